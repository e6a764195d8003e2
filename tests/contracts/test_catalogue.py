"""The catalogue: entries in the live shape, output plans, prices, user files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from wavespeed_mock.contracts import (
    Catalogue,
    CatalogueError,
    ModelSpec,
    UnknownModelError,
    builtin_catalogue,
    get_model,
    kind_for_type,
    load_catalogue_file,
)

MODELS = builtin_catalogue().ids()
CATEGORIES = {
    "image": "wavespeed-ai/z-image/turbo",
    "video": "kwaivgi/kling-v3.0-std/text-to-video",
    "audio": "elevenlabs/multilingual-v2",
    "text": "wavespeed-ai/any-llm",
}


def test_the_builtin_catalogue_has_at_least_40_models_ovi_first() -> None:
    assert len(MODELS) >= 40
    assert MODELS[:2] == [
        "character-ai/ovi/image-to-video",
        "character-ai/ovi/text-to-video",
    ]
    kinds = {get_model(m).outputs_for({}).kind for m in MODELS}
    assert kinds == {"image", "video", "audio", "text"}
    # Every category teams chain with Ovi has a model.
    for wanted in (
        "wavespeed-ai/z-image/turbo",
        "bytedance/seedream-v5.0-pro",
        "google/nano-banana-2/text-to-image",
        "openai/gpt-image-2/text-to-image",
        "wavespeed-ai/flux-dev",
        "google/veo3.1/text-to-video",
        "openai/sora-2/text-to-video",
        "wavespeed-ai/video-upscaler",
        "wavespeed-ai/real-esrgan",
        "wavespeed-ai/infinitetalk",
        "wavespeed-ai/ace-step-1.5",
        "wavespeed-ai/any-llm",
    ):
        assert wanted in MODELS


@pytest.mark.parametrize("model", MODELS)
def test_each_served_entry_has_the_live_shape(model: str) -> None:
    spec = get_model(model)
    served = spec.served("http://127.0.0.1:8000", 3)
    assert "x-mock" not in json.dumps(served)
    assert {"model_id", "name", "type", "base_price", "api_schema"} <= set(served)
    assert served["model_id"] == model and isinstance(served["base_price"], float | int)
    (run,) = served["api_schema"]["api_schemas"]
    assert run["type"] == "model_run" and run["method"] == "POST"
    assert run["api_path"] == f"/api/v3/{model}"
    assert run["server"] == "http://127.0.0.1:8000"
    schema = run["request_schema"]
    props = schema["properties"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["required"]) <= set(props)
    assert sorted(schema["x-order-properties"]) == sorted(props)
    assert "webhook_url" not in props and "$ref" not in json.dumps(schema)
    for name in ("enable_sync_mode", "enable_base64_output"):
        if name in props:
            assert props[name]["disabled"] is True and props[name]["default"] is False
    for name, prop in props.items():
        assert "type" in prop, (model, name)
        if prop.get("x-ui-component") in ("uploader", "uploaders"):
            assert str(prop.get("x-accept", "")).endswith("/*"), (model, name)
    assert spec.sources, model
    assert (
        "[inferred]" not in json.dumps(served)
        and "mock" not in json.dumps(schema).lower()
    )


@pytest.mark.parametrize("model", MODELS)
def test_a_default_run_costs_the_base_price_unless_priced_by_length_of_text(
    model: str,
) -> None:
    spec = get_model(model)
    if spec.price.per == "character":
        text = "x" * int(spec.price.unit)
        assert spec.price_for({spec.price.of: text}) == pytest.approx(
            spec.price.amount if spec.price.amount is not None else spec.base_price
        )
    else:
        assert spec.price_for({}) == pytest.approx(spec.base_price), model


def _spec(
    schema_props: dict[str, Any], output: dict[str, Any] | None = None, **extra: Any
) -> ModelSpec:
    entry: dict[str, Any] = {
        "model_id": "acme/thing/text-to-image",
        "type": extra.pop("type", "text-to-image"),
        "base_price": extra.pop("base_price", 0.02),
        "api_schema": {
            "api_schemas": [
                {
                    "type": "model_run",
                    "api_path": "/api/v3/acme/thing/text-to-image",
                    "request_schema": {"type": "object", "properties": schema_props},
                }
            ]
        },
    }
    if output is not None or extra:
        entry["x-mock"] = {"output": output or {}, **extra}
    return ModelSpec.from_entry(entry)


def test_the_conventional_properties_drive_the_output() -> None:
    spec = _spec(
        {
            "prompt": {"type": "string"},
            "size": {"type": "string", "default": "768*512"},
            "num_images": {"type": "integer", "default": 1},
            "output_format": {"type": "string", "default": "jpeg"},
        }
    )
    plan = spec.outputs_for({"prompt": "x"})
    assert (plan.kind, plan.format, plan.width, plan.height, plan.count) == (
        "image",
        "jpeg",
        768,
        512,
        1,
    )
    plan = spec.outputs_for(
        {"size": "300*200", "num_images": 3, "output_format": "webp"}
    )
    assert (plan.width, plan.height, plan.count, plan.format) == (300, 200, 3, "webp")
    assert plan.names("abc") == ["abc.webp", "abc-1.webp", "abc-2.webp"]
    assert spec.outputs_for({"num_images": 999}).count == 16  # bounded


def test_aspect_ratio_and_resolution_make_the_size() -> None:
    spec = _spec(
        {
            "aspect_ratio": {"type": "string", "default": "16:9"},
            "resolution": {"type": "string", "default": "720p"},
        },
        {"kind": "video", "duration_s": 5},
        type="text-to-video",
    )
    plan = spec.outputs_for({})
    assert (plan.width, plan.height, plan.duration_s, plan.audio) == (
        1280,
        720,
        5.0,
        False,
    )
    assert (
        spec.outputs_for({"aspect_ratio": "9:16"}).width,
        spec.outputs_for({"aspect_ratio": "9:16"}).height,
    ) == (720, 1280)
    four_k = spec.outputs_for({"resolution": "4k"})  # "k" sizes name the long side
    assert (four_k.width, four_k.height) == (4096, 2304)
    assert spec.outputs_for({"duration": "8"}).duration_s == 8.0


def test_audio_follows_its_switch_and_prices_follow_their_rule() -> None:
    spec = _spec(
        {
            "generate_audio": {"type": "boolean", "default": False},
            "duration": {"type": "integer", "default": 5},
        },
        {"kind": "video", "audio": "generate_audio"},
        price={
            "per": "second",
            "amount": 0.1,
            "unit": 1,
            "by": {"generate_audio": {"true": 2}},
        },
        base_price=0.5,
    )
    assert (
        not spec.outputs_for({}).audio
        and spec.outputs_for({"generate_audio": True}).audio
    )
    assert spec.price_for({}) == pytest.approx(0.5)
    assert spec.price_for({"duration": 10, "generate_audio": True}) == pytest.approx(
        2.0
    )


def test_the_kind_comes_from_the_type_or_the_id() -> None:
    assert kind_for_type("text-to-image") == "image"
    assert kind_for_type("image-to-video") == "video"
    assert kind_for_type("acme/voice/text-to-speech") == "audio"
    assert kind_for_type("acme/any-llm") == "text"
    assert kind_for_type("video-to-video") == "video"


def test_a_saved_models_answer_loads_as_it_is_and_later_files_override(
    tmp_path: Path,
) -> None:
    live = get_model("wavespeed-ai/z-image/turbo").served()
    mine = dict(live, model_id="acme/new/text-to-image", name="Mine")
    mine["api_schema"] = {
        "api_schemas": [
            dict(
                live["api_schema"]["api_schemas"][0],
                api_path="/api/v3/acme/new/text-to-image",
            )
        ]
    }
    first = tmp_path / "a.json"
    first.write_text(json.dumps({"code": 200, "message": "success", "data": [mine]}))
    second = tmp_path / "b.json"
    second.write_text(json.dumps([dict(mine, base_price=9.0)]))
    catalogue = Catalogue.with_files([first, second])
    assert len(catalogue) == len(builtin_catalogue()) + 1
    spec = catalogue.get("acme/new/text-to-image")
    assert spec.base_price == 9.0 and spec.outputs_for({}).kind == "image"
    assert load_catalogue_file(first)[0].name == "Mine"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("not json", "is not JSON"),
        ('{"code": 200}', "GET /api/v3/models answer"),
        ('[{"model_id": "Bad Id"}]', "'Bad Id'"),
        ('[{"model_id": "acme/x"}]', "request_schema"),
    ],
)
def test_a_catalogue_the_mock_cannot_use_says_why(
    tmp_path: Path, content: str, words: str
) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(
        CatalogueError, match=words.replace("(", r"\(").replace(")", r"\)")
    ):
        load_catalogue_file(path)


def test_an_unknown_model_names_the_nearest_ids_and_how_to_add_it() -> None:
    with pytest.raises(UnknownModelError) as caught:
        builtin_catalogue().get("wavespeed-ai/z-image/turb")
    assert caught.value.nearest[0] == "wavespeed-ai/z-image/turbo"
    assert "--catalogue FILE" in str(caught.value) and "--any-model" in str(
        caught.value
    )


def test_any_model_serves_a_well_formed_id_with_a_permissive_schema() -> None:
    catalogue = Catalogue.with_files(any_model=True)
    spec = catalogue.get("acme/new-thing/text-to-speech")
    assert spec.any_model and spec.outputs_for({"prompt": "hi"}).kind == "audio"
    assert list(spec.request_errors({"prompt": "x", "anything": [1, 2]})) == []
    assert catalogue.find("Not An Id") is None
    assert Catalogue.with_files().find("acme/new-thing/text-to-speech") is None


@pytest.mark.parametrize("kind", sorted(CATEGORIES))
def test_each_kind_has_a_model_whose_strategies_make_valid_bodies(kind: str) -> None:
    from hypothesis import HealthCheck, given, settings
    from wavespeed_mock.plugins import invalid_request_bodies, request_bodies

    spec = get_model(CATEGORIES[kind])

    @settings(
        max_examples=15, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(request_bodies(spec.id), invalid_request_bodies(spec.id))
    def check(body: dict[str, Any], bad: Any) -> None:
        assert list(spec.request_errors(body)) == []
        assert spec.outputs_for(body).kind == kind
        assert bad.path in [e.path for e in spec.request_errors(bad.body)]

    check()


@pytest.mark.parametrize("model", MODELS)
def test_a_remembered_plan_is_the_plan_of_the_whole_body(model: str) -> None:
    """outputs_for remembers plans by the values they read: for any valid body,
    the remembered plan is the one the whole body makes."""
    from hypothesis import HealthCheck, given, settings
    from wavespeed_mock.plugins import request_bodies

    spec = get_model(model)

    @settings(
        max_examples=25, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(request_bodies(model))
    def check(body: dict[str, Any]) -> None:
        assert spec.outputs_for(body) == spec._plan(body)
        assert spec.outputs_for(body) == spec._plan(body)  # and when remembered

    check()


def test_values_that_compare_equal_are_not_one_plan() -> None:
    # 2, 2.0 and True are equal dictionary keys; as a length only 2 and 2.0 are.
    spec = get_model(CATEGORIES["video"])
    name = spec.output.param("duration")
    default = spec.outputs_for({}).duration_s
    assert default != 1.0
    assert spec.outputs_for({name: 1}).duration_s == 1.0
    assert spec.outputs_for({name: 1.0}).duration_s == 1.0
    assert spec.outputs_for({name: True}).duration_s == default
