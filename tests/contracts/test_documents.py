"""The documents themselves: valid OpenAPI, valid schemas, complete coverage."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
import wavespeed_mock.contracts as contracts
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from openapi_spec_validator import validate as validate_openapi
from openapi_spec_validator.readers import read_from_filename
from wavespeed_mock.contracts import (
    list_models,
    load_openapi,
    load_schema,
    request_schema,
    schema_names,
)

I2V = "character-ai/ovi/image-to-video"
DOCUMENTS = ["openapi.yaml", "mock-control.yaml"]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_openapi_document_passes_the_spec_validator(name: str) -> None:
    path = resources.files("wavespeed_mock.contracts") / name
    spec, base_uri = read_from_filename(str(path))
    validate_openapi(spec, base_uri=base_uri)


def _inline_schemas(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema" and isinstance(value, dict):
                found.append((f"{where}/schema", value))
            found.extend(_inline_schemas(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_inline_schemas(value, f"{where}/{i}"))
    return found


@pytest.mark.parametrize("name", schema_names())
def test_schema_file_passes_its_metaschema(name: str) -> None:
    Draft202012Validator.check_schema(load_schema(name))


@pytest.mark.parametrize("document", DOCUMENTS)
def test_inline_schemas_pass_the_metaschema(document: str) -> None:
    inline = _inline_schemas(load_openapi(document))
    assert inline, "expected schemas in the document"
    broken = []
    for where, schema in inline:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            broken.append(f"{where}: {exc.message}")
    assert broken == [], f"inline schemas of {document} that break the metaschema"


def test_every_referenced_schema_file_exists() -> None:
    names = set(schema_names())
    for document in DOCUMENTS:
        for _, schema in _inline_schemas(load_openapi(document)):
            ref = schema.get("$ref", "")
            if ref.startswith("schemas/"):
                assert ref.removeprefix("schemas/") in names, ref


def test_submit_success_is_exactly_200() -> None:
    paths = load_openapi()["paths"]
    for model in contracts.list_models():
        if model.contract is None:
            continue  # served by the catalogue's one submit route
        responses = paths[model.path]["post"]["responses"]
        assert "200" in responses
        assert not {"201", "202", "2XX"} & set(responses)


def test_every_documented_endpoint_is_described() -> None:
    paths = load_openapi()["paths"]
    expected = {
        ("post", "/api/v3/character-ai/ovi/image-to-video"),
        ("post", "/api/v3/character-ai/ovi/text-to-video"),
        ("get", "/api/v3/predictions/{id}/result"),
        ("get", "/api/v3/predictions/{id}"),
        ("post", "/api/v3/predictions"),
        ("post", "/api/v3/predictions/delete"),
        ("post", "/api/v3/media/uploads"),
        ("post", "/api/v3/media/upload/binary"),
        ("put", "/uploads/{upload_id}/{filename}"),
        ("get", "/api/v3/balance"),
        ("get", "/api/v3/webhook/secret"),
        ("get", "/api/v3/models"),
        ("post", "/api/v3/model/price"),
        ("get", "/outputs/{filename}"),
    }
    present = {(m, p) for p, item in paths.items() for m in item}
    assert expected <= present
    assert "predictionFinished" in load_openapi()["webhooks"]
    for status in ("400", "401", "403", "404", "405", "413", "429", "5XX"):
        assert (
            status
            in paths["/api/v3/character-ai/ovi/image-to-video"]["post"]["responses"]
        )


def test_mock_only_routes_are_marked() -> None:
    paths = load_openapi()["paths"]
    for path in ("/outputs/{filename}", "/uploads/{upload_id}/{filename}"):
        for operation in paths[path].values():
            assert "mock-only" in operation["tags"]
    assert {"200", "206", "416"} <= set(
        paths["/outputs/{filename}"]["get"]["responses"]
    )


def test_catalogue_contract_entries_point_at_real_schemas() -> None:
    for spec in list_models():
        if spec.contract is not None:
            assert spec.contract in schema_names()
    assert request_schema(I2V, strict=True)["additionalProperties"] is False
    assert request_schema(I2V)["additionalProperties"] is True
