"""Request bodies: the seed doc's example passes, each broken rule is named."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from wavespeed_mock.contracts import (
    ContractError,
    UnknownModelError,
    get_model,
    is_valid_request,
    iter_request_errors,
    list_models,
    request_schema,
    validate_request,
)

I2V = "character-ai/ovi/image-to-video"
T2V = "character-ai/ovi/text-to-video"

# The seed doc's prompt example, with the reference's placeholder image URL (§1.1).
KNIGHT = {
    "image": "https://example.com/knight.png",
    "prompt": (
        "A wide shot of a medieval knight standing in the rain, sword planted into the "
        "ground, glowing with mystical energy.\n<S>I will defend this land until my last "
        "breath.<E>\n<AUDCAP>Thunder rolls across the dark sky, distant war drums echo."
        "<ENDAUDCAP>"
    ),
    "seed": -1,
}


def test_the_seed_docs_example_request_validates() -> None:
    validate_request(I2V, KNIGHT)
    validate_request(I2V, KNIGHT, strict=True)


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "A cinematic ocean wave at sunrise, highly detailed"},
        {
            "prompt": "A cinematic ocean wave at sunrise, highly detailed",
            "size": "960*540",
            "seed": 0,
        },
        {"prompt": "p", "size": "540*960", "seed": 2147483647},
    ],
)
def test_llms_txt_text_to_video_examples_validate(body: dict[str, Any]) -> None:
    validate_request(T2V, body)


INVALID: list[tuple[str, str, Any, str]] = [
    ("missing image", I2V, {"prompt": "p"}, "$.image"),
    ("missing prompt", I2V, {"image": "https://e.com/a.png"}, "$.prompt"),
    ("empty prompt", I2V, {"image": "https://e.com/a.png", "prompt": ""}, "$.prompt"),
    ("seed past 2^53", I2V, dict(KNIGHT, seed=2**53), "$.seed"),
    ("seed below -1", I2V, dict(KNIGHT, seed=-2), "$.seed"),
    ("seed as string", I2V, dict(KNIGHT, seed="42"), "$.seed"),
    ("image not a string", I2V, dict(KNIGHT, image=42), "$.image"),
    ("size not offered", T2V, {"prompt": "p", "size": "1024*1024"}, "$.size"),
    ("empty body", I2V, {}, "$.image"),
    ("body not an object", I2V, ["image", "prompt"], "$"),
    ("prompt too long", T2V, {"prompt": "x" * 10_001}, "$.prompt"),
    (
        "image URL too long",
        I2V,
        dict(KNIGHT, image="https://e.com/" + "a" * 8200),
        "$.image",
    ),
    ("image not http(s)", I2V, dict(KNIGHT, image="ftp://e.com/a.png"), "$.image"),
    ("image not a URL", I2V, dict(KNIGHT, image="https://"), "$.image"),
]


@pytest.mark.parametrize(
    ("model", "body", "path"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_request_is_rejected_with_the_field_path(
    model: str, body: Any, path: str
) -> None:
    with pytest.raises(ContractError) as caught:
        validate_request(model, body)
    assert caught.value.path == path
    assert path in str(caught.value)
    assert not is_valid_request(model, body)


def test_empty_body_names_both_missing_fields() -> None:
    paths = {e.path for e in iter_request_errors(I2V, {"seed": -1})}
    assert paths == {"$.image", "$.prompt"}


def test_unknown_fields_are_ignored_by_default_and_rejected_in_strict_mode() -> None:
    body = dict(KNIGHT, seeds=3)
    validate_request(I2V, body)
    with pytest.raises(ContractError) as caught:
        validate_request(I2V, body, strict=True)
    assert caught.value.path == "$.seeds"
    assert caught.value.suggestion == "seed"
    assert "Did you mean 'seed'?" in str(caught.value)


def test_data_uri_is_a_mock_convenience_refused_in_strict_mode() -> None:
    body = dict(KNIGHT, image="data:image/png;base64,iVBORw0KGgo=")
    validate_request(I2V, body)
    with pytest.raises(ContractError) as caught:
        validate_request(I2V, body, strict=True)
    assert caught.value.path == "$.image"


def test_sync_mode_flag_is_part_of_the_contract() -> None:
    validate_request(T2V, {"prompt": "p", "enable_sync_mode": True}, strict=True)
    with pytest.raises(ContractError):
        validate_request(T2V, {"prompt": "p", "enable_sync_mode": "yes"})


def test_unknown_model_suggests_the_closest() -> None:
    with pytest.raises(UnknownModelError) as caught:
        validate_request("character-ai/ovi/img-to-video", KNIGHT)
    assert caught.value.suggestion == I2V
    assert isinstance(caught.value, LookupError)


def test_contract_error_carries_data() -> None:
    with pytest.raises(ContractError) as caught:
        validate_request(I2V, dict(KNIGHT, seed=-2))
    error = caught.value
    assert error.instance == -2
    assert error.schema_path.endswith("/minimum")
    assert error.field == "seed"
    assert isinstance(error, ValueError)


def test_strict_schema_is_a_copy() -> None:
    assert request_schema(I2V)["additionalProperties"] is True
    assert request_schema(I2V, strict=True)["additionalProperties"] is False
    assert request_schema(I2V)["additionalProperties"] is True


def test_ovi_prices_and_outputs() -> None:
    models = {m.id: m for m in list_models()}
    assert {I2V, T2V} <= set(models)
    for m in (models[I2V], models[T2V]):
        assert m.base_price == 0.15
        assert m.price_for() == 0.15
        plan = m.outputs_for({"prompt": "x"})
        assert (plan.fps, plan.frame_count, plan.audio) == (24, 121, True)
        assert (
            m.price.cost(0.15, {}, replace(plan, duration_s=2)) == 0.15
        )  # minimum: 5 s
        assert m.price.cost(0.15, {}, replace(plan, duration_s=7)) == 0.30
    assert get_model(I2V).takes_image and not get_model(T2V).takes_image
