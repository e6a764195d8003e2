"""The contract's facts agree with the schemas that validate real bodies.

Each test checks a fact against what the validators do with it (or against the
other facts), so that a fact that drifts from its schema, or a schema edit that
breaks a fact, fails here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from PIL import Image
from wavespeed_mock.contracts import (
    body_limits,
    did_you_mean,
    image_formats,
    is_valid,
    iter_request_errors,
    list_models,
    load_schema,
    refunded_statuses,
    request_schema,
    seed_rule,
    statuses,
    terminal_statuses,
    validate,
    validate_request,
)

# The seed rule is the Ovi contract's fact: the models its schemas check.
MODELS = [model.id for model in list_models() if model.contract is not None]
I2V = "character-ai/ovi/image-to-video"


def _body(model: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": "waves at dawn", **fields}
    if "image" in request_schema(model).get("required", []):
        body["image"] = "https://example.com/knight.png"
    return body


# -- the seed rule -------------------------------------------------------------------


def test_every_model_takes_a_seed() -> None:
    # Otherwise the seed tests below would check nothing for that model.
    assert MODELS
    for model in MODELS:
        assert "seed" in request_schema(model, strict=True)["properties"], model


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("model", MODELS)
def test_seed_rule_agrees_with_each_request_schema(model: str, strict: bool) -> None:
    rule = seed_rule()
    seed = request_schema(model, strict=strict, inlined=True)["properties"]["seed"]
    if not strict:  # the documented range, then the mock-only large seeds
        seed, large = seed["anyOf"]
        assert large["minimum"] == rule.maximum + 1 and large["x-wavespeed-mock-only"]
    else:  # strict: the documented range only
        (seed,) = seed["anyOf"]

    assert seed["maximum"] == rule.maximum
    # The request admits the random-seed value and nothing below it.
    assert seed["minimum"] == rule.random
    assert seed.get("default", rule.random) == rule.random
    # A drawn seed is a real one: random-seed value excluded, bounds kept.
    assert rule.random < rule.minimum <= rule.maximum


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("model", MODELS)
def test_validation_accepts_the_seed_rule_and_rejects_past_it(
    model: str, strict: bool
) -> None:
    rule = seed_rule()
    for seed in (rule.random, rule.minimum, rule.maximum):
        validate_request(model, _body(model, seed=seed), strict=strict)

    past = [(rule.random - 1, "minimum")]
    if strict:
        past.append((rule.maximum + 1, "maximum"))
    else:  # past the maximum is taken outside strict mode (reduced modulo 2^31)
        validate_request(model, _body(model, seed=rule.maximum + 1), strict=strict)
        validate_request(model, _body(model, seed=9999999998), strict=strict)
    for seed, keyword in past:
        errors = list(
            iter_request_errors(model, _body(model, seed=seed), strict=strict)
        )
        assert [e.path for e in errors] == ["$.seed"], (seed, errors)
        assert errors[0].schema_path.endswith(keyword), errors[0].schema_path


def test_seed_rule_resolves_only_the_random_value() -> None:
    rule = seed_rule()
    draws: list[tuple[int, int]] = []

    def draw(low: int, high: int) -> int:
        draws.append((low, high))
        return 7

    assert rule.resolve(rule.random, draw) == 7
    assert draws == [(rule.minimum, rule.maximum)]  # drawn within the bounds
    assert rule.resolve(rule.minimum, draw) == rule.minimum
    assert rule.resolve(rule.maximum, draw) == rule.maximum
    assert len(draws) == 1  # no draw for a seed that was given
    # A large seed (outside strict mode) is reduced modulo maximum + 1.
    assert rule.resolve(rule.maximum + 1, draw) == 0
    assert rule.resolve(9999999998, draw) == 9999999998 % (rule.maximum + 1)


# -- statuses --------------------------------------------------------------------------


def test_every_status_is_one_a_prediction_may_have() -> None:
    assert len(set(statuses())) == len(statuses())
    for status in statuses():
        validate("prediction", {"id": "x", "status": status})


def test_a_status_outside_the_list_is_rejected() -> None:
    made_up = "".join(statuses())
    assert not is_valid("prediction", {"id": "x", "status": made_up})


def test_terminal_and_refunded_are_statuses() -> None:
    assert terminal_statuses() <= set(statuses())
    assert refunded_statuses() <= terminal_statuses()


def test_a_finished_task_is_terminal_and_a_live_one_is_not() -> None:
    assert "completed" in terminal_statuses()
    assert "deleted" in terminal_statuses()
    live = [s for s in statuses() if s not in terminal_statuses()]
    assert live, "a task must start somewhere before it ends"
    # In lifecycle order: every live status comes before every terminal one.
    assert list(statuses()[: len(live)]) == live


def test_only_tasks_without_an_output_are_refunded() -> None:
    refunded = refunded_statuses()

    assert refunded, "the docs refund failed tasks (D-REFUND)"
    assert "failed" in refunded
    assert "completed" not in refunded  # the clip was delivered
    assert "deleted" not in refunded  # deleted after it was delivered


# -- body limits and image formats ---------------------------------------------------


def test_a_submit_body_fits_the_largest_data_uri() -> None:
    limits = body_limits()
    data_uri = load_schema("common.json")["$defs"]["data_uri"]

    assert 0 < limits.json_bytes <= limits.submit_bytes
    assert limits.submit_bytes >= data_uri["maxLength"]


def test_image_formats_are_pillow_format_names_data_uris_may_carry() -> None:
    Image.init()
    pattern = load_schema("common.json")["$defs"]["data_uri"]["pattern"]

    assert image_formats()
    for name in image_formats():
        assert name in Image.OPEN, f"{name!r} is not a format Pillow can open"
        assert re.search(pattern, f"data:image/{name.lower()};base64,AAAA"), name


# -- did you mean ------------------------------------------------------------------------


def test_did_you_mean_offers_the_close_field() -> None:
    fields = request_schema(I2V, strict=True)["properties"]

    assert did_you_mean("promt", fields) == "prompt"
    assert did_you_mean("seeds", iter(fields)) == "seed"


@pytest.mark.parametrize(
    ("name", "choices"),
    [("webhook_secret", ["prompt", "seed", "image"]), ("promt", [])],
)
def test_did_you_mean_offers_nothing_unrelated(name: str, choices: list[str]) -> None:
    assert did_you_mean(name, choices) is None


def test_an_unknown_field_is_answered_with_the_same_suggestion() -> None:
    body = _body(I2V, promt="waves")
    (error,) = iter_request_errors(I2V, body, strict=True)

    assert error.suggestion == did_you_mean("promt", request_schema(I2V)["properties"])
