"""The strategies: generated from the contract's schemas, valid, small, one break."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from wavespeed_mock.contracts import (
    ContractError,
    get_model,
    is_valid,
    iter_request_errors,
    list_models,
    load_schema,
    schema_names,
    seed_rule,
    validate_request,
)
from wavespeed_mock.plugins import (
    InvalidBody,
    UnknownSchemaError,
    UnsupportedSchemaError,
    check_schema_supported,
    from_schema,
    invalid_request_bodies,
    prompts,
    request_bodies,
    seeds,
)
from wavespeed_mock.plugins import strategies as strategies_module
from wavespeed_mock.plugins.strategies import (
    ANNOTATION_KEYWORDS,
    ASSERTION_KEYWORDS,
    MAX_ITEMS,
    MAX_PROMPT_SIZE,
    MAX_TEXT_SIZE,
)

MODELS = [model.id for model in list_models()]
I2V = "character-ai/ovi/image-to-video"
T2V = "character-ai/ovi/text-to-video"
FEW = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# -- the translator covers every keyword the contract uses ---------------------------


@pytest.mark.parametrize("name", schema_names())
def test_every_contract_schema_uses_only_handled_keywords(name: str) -> None:
    check_schema_supported(name)  # raises UnsupportedSchemaError naming the keyword


def _keywords(node: Any) -> set[str]:
    """Every keyword at a schema position, found independently of the translator."""
    if not isinstance(node, dict):
        return set()
    found = set(node)
    for key in ("properties", "$defs"):
        for sub in node.get(key, {}).values():
            found |= _keywords(sub)
    for key in ("items", "additionalProperties"):
        found |= _keywords(node.get(key))
    for key in ("anyOf", "oneOf"):
        for sub in node.get(key, []):
            found |= _keywords(sub)
    return found


def test_the_handled_keyword_list_covers_the_contract() -> None:
    used = set().union(*(_keywords(load_schema(name)) for name in schema_names()))
    assert used - ASSERTION_KEYWORDS - ANNOTATION_KEYWORDS == set()


@pytest.mark.parametrize(
    ("schema", "keyword", "pointer"),
    [
        (
            {"type": "object", "patternProperties": {"^x": {}}},
            "patternProperties",
            "/patternProperties",
        ),
        (
            {"properties": {"a": {"type": "array", "uniqueItems": True}}},
            "uniqueItems",
            "/properties/a/uniqueItems",
        ),
        ({"anyOf": [{"if": {}}]}, "if", "/anyOf/0/if"),
        ({"type": "string", "format": "email"}, "format: email", "/format"),
        ({"$defs": {"x": {"x-unknown": 1}}}, "x-unknown", "/$defs/x/x-unknown"),
        ({"type": "decimal"}, "type: decimal", "/type"),
    ],
)
def test_an_unhandled_keyword_is_refused_with_its_place(
    schema: dict[str, Any], keyword: str, pointer: str
) -> None:
    with pytest.raises(UnsupportedSchemaError) as caught:
        from_schema(schema)
    assert (caught.value.keyword, caught.value.pointer) == (keyword, pointer)
    assert isinstance(caught.value, ValueError)
    assert "strategies/_keywords.py" in str(caught.value)


def test_an_unknown_schema_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownSchemaError, match=r"Did you mean 'prediction\.json'"):
        from_schema("predicton")


# -- generated values conform ----------------------------------------------------------


@pytest.mark.parametrize("name", schema_names())
def test_values_generated_from_each_schema_validate(name: str) -> None:
    @settings(
        max_examples=15,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(from_schema(name))
    def check(value: Any) -> None:
        assert is_valid(name, value), value

    check()


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("strict", [False, True])
def test_request_bodies_pass_validate_request(model: str, strict: bool) -> None:
    @FEW
    @given(request_bodies(model, strict=strict))
    def check(body: dict[str, Any]) -> None:
        validate_request(model, body, strict=strict)
        validate_request(model, body)  # strict bodies are valid for the mock too

    check()


@FEW
@given(request_bodies(I2V, strict=True))
def test_strict_bodies_hold_documented_fields_and_urls_only(
    body: dict[str, Any],
) -> None:
    assert set(body) <= {
        "image",
        "prompt",
        "seed",
        "enable_sync_mode",
        "enable_base64_output",
    }
    assert re.match(r"(?i)https?://", body["image"])


@pytest.mark.parametrize("sync_mode", [False, True])
def test_sync_mode_is_asked_for_only_when_allowed(sync_mode: bool) -> None:
    asked: list[bool] = []

    @FEW
    @given(request_bodies(T2V, sync_mode=sync_mode))
    def collect(body: dict[str, Any]) -> None:
        asked.append(body.get("enable_sync_mode") is True)

    collect()
    assert any(asked) is sync_mode


def test_lenient_bodies_can_use_the_mocks_data_uris() -> None:
    images: list[str] = []

    @FEW
    @given(request_bodies(I2V))
    def collect(body: dict[str, Any]) -> None:
        images.append(body["image"])

    collect()
    data_uris = [i for i in images if i.startswith("data:")]
    assert data_uris
    assert all(len(i) < 200 for i in data_uris)


@pytest.mark.parametrize(
    ("schema", "bound"),
    [
        ({"type": "string", "maxLength": 31457280}, MAX_TEXT_SIZE),
        ({"$ref": "common.json#/$defs/data_uri"}, 200),
        ({"$ref": "common.json#/$defs/http_url"}, 80),
        ({"type": "array", "maxItems": 1000}, MAX_ITEMS),
        ({"$ref": "common.json#/$defs/prompt"}, MAX_PROMPT_SIZE),
    ],
)
def test_huge_bounds_do_not_make_huge_values(
    schema: dict[str, Any], bound: int
) -> None:
    @FEW
    @given(from_schema(schema))
    def check(value: Any) -> None:
        assert len(value) <= bound

    check()


def test_a_pointer_into_a_file_names_one_definition() -> None:
    @FEW
    @given(from_schema("common.json#/$defs/seed"))
    def check(seed: int) -> None:
        assert seed_rule().random <= seed <= seed_rule().maximum

    check()


def test_inline_schemas_resolve_their_own_refs_and_one_of() -> None:
    schema = {
        "$defs": {"small": {"type": "integer", "minimum": 0, "maximum": 3}},
        "type": "object",
        "required": ["n", "either"],
        "properties": {
            "n": {"$ref": "#/$defs/small"},
            "either": {
                "oneOf": [
                    {"type": "integer", "exclusiveMinimum": 5},
                    {"type": "integer", "maximum": 9},
                ]
            },
            "when": {"$ref": "common.json#/$defs/rfc3339"},
        },
        "additionalProperties": False,
    }

    @FEW
    @given(from_schema(schema))
    def check(value: dict[str, Any]) -> None:
        assert 0 <= value["n"] <= 3
        assert not 5 < value["either"] <= 9  # exactly one branch holds
        assert set(value) <= {"n", "either", "when"}

    check()


def test_all_of_rules_across_fields_hold_in_every_value() -> None:
    schema = {
        "type": "object",
        "properties": {
            "scope": {"enum": ["global", "key"]},
            "api_key": {"type": "string"},
        },
        "allOf": [
            {
                "if": {
                    "required": ["scope"],
                    "properties": {"scope": {"const": "key"}},
                },
                "then": {"required": ["api_key"]},
            }
        ],
        "additionalProperties": False,
    }
    seen: set[str] = set()

    @FEW
    @given(from_schema(schema))
    def check(value: dict[str, Any]) -> None:
        if value.get("scope") == "key":
            assert "api_key" in value
        seen.add(value.get("scope", "none"))

    check()
    assert "key" in seen  # the rule filtered values, it did not rule the scope out


def test_strict_leaves_out_mock_only_branches() -> None:
    @FEW
    @given(from_schema("ovi-image-to-video.request.json", strict=True))
    def check(body: dict[str, Any]) -> None:
        assert not body["image"].startswith("data:")

    check()


# -- prompts and seeds ---------------------------------------------------------------


@FEW
@given(prompts())
def test_prompts_fit_the_contract_and_keep_tags_whole(prompt: str) -> None:
    assert 1 <= len(prompt) <= MAX_PROMPT_SIZE
    assert prompt.count("<S>") == prompt.count("<E>")
    assert prompt.count("<AUDCAP>") == prompt.count("<ENDAUDCAP>")


def test_prompts_carry_speech_and_audio_tags() -> None:
    seen: list[str] = []

    @FEW
    @given(prompts())
    def collect(prompt: str) -> None:
        seen.append(prompt)

    collect()
    assert any(re.search(r"<S>.+<E>", p) for p in seen)
    assert any(re.search(r"<AUDCAP>.+<ENDAUDCAP>", p) for p in seen)


@FEW
@given(prompts(max_size=20))
def test_prompts_honour_a_smaller_size(prompt: str) -> None:
    assert 1 <= len(prompt) <= 20


def test_a_prompt_size_outside_the_contract_is_refused() -> None:
    with pytest.raises(ValueError, match="no prompt fits"):
        prompts(min_size=20_000)


@pytest.mark.parametrize(
    "edge", [seed_rule().random, seed_rule().minimum, seed_rule().maximum]
)
def test_seeds_reach_the_documented_edges(edge: int) -> None:
    assert (
        find(
            seeds(),
            lambda s: s == edge,
            settings=settings(derandomize=True, database=None),
        )
        == edge
    )


# -- one broken rule at a time -------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("strict", [False, True])
def test_invalid_bodies_break_exactly_the_rule_they_name(
    model: str, strict: bool
) -> None:
    @settings(
        max_examples=60,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(invalid_request_bodies(model, strict=strict))
    def check(case: InvalidBody) -> None:
        errors = list(iter_request_errors(model, case.body, strict=strict))
        assert len(errors) == 1, (case, errors)
        with pytest.raises(ContractError) as caught:
            validate_request(model, case.body, strict=strict)
        assert caught.value.path == case.path
        if case.rule != "anyOf":  # anyOf errors name the closest branch's rule
            assert caught.value.validator == case.rule

    check()


@pytest.mark.parametrize(
    ("model", "strict", "expected"),
    [
        (
            T2V,
            False,
            {
                ("$", "type"),
                ("$.prompt", "required"),
                ("$.prompt", "minLength"),
                ("$.prompt", "maxLength"),
                # the documented range or a large seed (mock-only): an anyOf
                ("$.seed", "anyOf"),
                ("$.size", "enum"),
            },
        ),
        (T2V, True, {("$.negative_prompt", "additionalProperties")}),
        (T2V, True, {("$.seed", "anyOf")}),
        (I2V, True, {("$.image", "required"), ("$.image", "anyOf")}),
    ],
)
def test_invalid_bodies_cover_each_rule_of_the_schema(
    model: str, strict: bool, expected: set[tuple[str, str]]
) -> None:
    assert expected <= {(m.path, m.rule) for m in _mutations(model, strict=strict)}


def _mutations(model: str, *, strict: bool) -> list[Any]:
    spec = get_model(model)
    return strategies_module._object_mutations(
        spec.declared_schema(strict=strict), spec.schema_base, strict=strict
    )


def test_a_strict_data_uri_image_is_an_invalid_body() -> None:
    mutations = _mutations(I2V, strict=True)
    case = next(m for m in mutations if str(m.value).startswith("data:"))
    assert (case.path, case.rule) == ("$.image", "anyOf")
    body = case.apply({"prompt": "a knight", "image": "https://example.com/k.png"}).body
    validate_request(I2V, body)  # the mock accepts it outside strict mode
    with pytest.raises(ContractError):
        validate_request(I2V, body, strict=True)


def test_strategies_are_hypothesis_strategies() -> None:
    for strategy in (
        request_bodies(T2V),
        invalid_request_bodies(T2V),
        prompts(),
        seeds(),
        from_schema("prediction.json"),
    ):
        assert isinstance(strategy, st.SearchStrategy)
