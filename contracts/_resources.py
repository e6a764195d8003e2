"""Loading the contract documents, once, through importlib.resources."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_BASE_URI = "https://wavespeed-mock.local/schemas/"


def _package_files() -> Any:
    return resources.files(__package__ or "wavespeed_mock.contracts")


@cache
def schema_names() -> tuple[str, ...]:
    """File names of every JSON Schema document, sorted."""
    folder = _package_files() / "schemas"
    return tuple(sorted(p.name for p in folder.iterdir() if p.name.endswith(".json")))


@cache
def load_schema(name: str) -> dict[str, Any]:
    """One schema document by file name (``prediction.json``)."""
    text = (_package_files() / "schemas" / name).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def schema_registry() -> Registry[Any]:
    """A referencing registry holding every schema under its ``$id``."""
    pairs = []
    for name in schema_names():
        resource = Resource.from_contents(
            load_schema(name), default_specification=DRAFT202012
        )
        pairs.append((SCHEMA_BASE_URI + name, resource))
    return Registry().with_resources(pairs)


@cache
def load_openapi(name: str = "openapi.yaml") -> dict[str, Any]:
    """The OpenAPI document (``openapi.yaml`` or ``mock-control.yaml``), parsed."""
    text = (_package_files() / name).read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def _inline(node: Any, base: str) -> Any:
    if isinstance(node, list):
        return [_inline(v, base) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        file, _, pointer = str(node["$ref"]).partition("#")
        file = file or base
        target: Any = load_schema(file)
        for part in pointer.strip("/").split("/") if pointer.strip("/") else []:
            target = target[part]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        merged.pop("$id", None)
        return _inline(merged, file)
    return {k: _inline(v, base) for k, v in node.items()}


@cache
def inlined_schema(name: str) -> dict[str, Any]:
    """Schema ``name`` with every ``$ref`` replaced by its target, recursively.

    Validating a self-contained schema skips jsonschema's reference resolution
    (the most expensive step on a submit), and reads as one document in
    ``GET /api/v3/models``. The contracts hold no recursive references.
    """
    inlined: dict[str, Any] = _inline(load_schema(name), name)
    return inlined
