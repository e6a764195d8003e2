"""The keyword table: the JSON Schema subset the translator handles, the size
caps of generated values, and finding a schema (a file, a pointer or a dict)
with every keyword checked against the table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ...contracts import (
    FACT_KEYWORDS,
    MOCK_ONLY,
    SCHEMA_BASE_URI,
    did_you_mean,
    load_schema,
    schema_names,
    schema_registry,
)
from ..errors import UnknownSchemaError, UnsupportedSchemaError

#: Keywords that carry no constraint; the translator reads ``$defs`` only through
#: ``$ref`` and ignores the rest.
ANNOTATION_KEYWORDS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "title",
        "description",
        "default",
        "examples",
        MOCK_ONLY,
        *FACT_KEYWORDS,  # the contract's facts (contracts.facts reads them)
        # WaveSpeed's catalogue UI hints (GET /api/v3/models): no constraint.
        "x-order-properties",
        "x-ui-component",
        "x-ui-component-props",
        "x-accept",
        "x-hidden",
        "disabled",
        "step",
    }
)
#: Keywords the translator turns into strategies.
ASSERTION_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "anyOf",
        "oneOf",
        "items",
        "minItems",
        "maxItems",
        "$ref",
        "allOf",  # generated without, then filtered through the validator
    }
)
SUPPORTED_FORMATS = frozenset({"uri", "date-time"})
_TYPES = frozenset(
    {"null", "boolean", "integer", "number", "string", "array", "object"}
)

#: Generated plain strings hold at most this many characters.
MAX_TEXT_SIZE = 40
#: Generated prompts hold at most this many characters.
MAX_PROMPT_SIZE = 400
#: Generated arrays hold at most this many items (or minItems, if larger).
MAX_ITEMS = 4
#: At most this many properties the schema does not name, where it allows them.
MAX_EXTRA_PROPERTIES = 2
# Integers and numbers without bounds stay within what every JSON parser keeps exact.
_UNBOUNDED = 2**53

_SYNC_FIELD = "enable_sync_mode"
# A webhook in the body would send deliveries (and is refused beside base64
# output): generated bodies leave webhooks to the test.
_WEBHOOK_FIELD = "webhook_url"
_INLINE_BASE = SCHEMA_BASE_URI + "__inline__.json"
_PROMPT_REF = SCHEMA_BASE_URI + "common.json#/$defs/prompt"
_SEED_REF = SCHEMA_BASE_URI + "common.json#/$defs/seed"
_DATA_URI_REF = SCHEMA_BASE_URI + "common.json#/$defs/data_uri"


def check_schema_supported(schema: str | Mapping[str, Any]) -> None:
    """Raise :class:`UnsupportedSchemaError` if any part of the document, ``$defs``
    included, uses a keyword or format the translator does not handle."""
    _locate(schema)


# -- finding the schema --------------------------------------------------------------


def _locate(schema: str | Mapping[str, Any]) -> tuple[Any, str, Registry[Any]]:
    if isinstance(schema, str):
        name, _, fragment = schema.partition("#")
        name = name if name.endswith(".json") else name + ".json"
        if name not in schema_names():
            raise UnknownSchemaError(
                name, list(schema_names()), did_you_mean(name, schema_names())
            )
        document: Any = load_schema(name)
        _walk_keywords(document, "", name)
        base = SCHEMA_BASE_URI + name
        registry = schema_registry()
        node = document
        if fragment:
            node = registry.resolver(base_uri=base).lookup("#" + fragment).contents
        return node, base, registry
    if not isinstance(schema, Mapping):
        raise TypeError(
            "from_schema() takes a schema file name or a dict, "
            f"not {type(schema).__name__}"
        )
    document = dict(schema)
    _walk_keywords(document, "", "")
    base = str(document.get("$id", _INLINE_BASE))
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return document, base, schema_registry().with_resource(base, resource)


def _walk_keywords(node: Any, pointer: str, name: str) -> None:
    if isinstance(node, bool):
        return
    if not isinstance(node, Mapping):
        raise UnsupportedSchemaError(
            f"<a {type(node).__name__} where a schema belongs>", pointer, name
        )
    for key, value in node.items():
        here = f"{pointer}/{_escape(key)}"
        if key not in ANNOTATION_KEYWORDS and key not in ASSERTION_KEYWORDS:
            raise UnsupportedSchemaError(key, here, name)
        if key in ("properties", "$defs"):
            for sub_key, sub in value.items():
                _walk_keywords(sub, f"{here}/{_escape(sub_key)}", name)
        elif key in ("items", "additionalProperties"):
            _walk_keywords(value, here, name)
        elif key in ("anyOf", "oneOf"):
            for index, sub in enumerate(value):
                _walk_keywords(sub, f"{here}/{index}", name)
        elif key == "allOf":
            # Only filtered through: any keyword the validator knows will do
            # (``if``/``then`` for a field required by another's value).
            continue
        elif key == "format" and value not in SUPPORTED_FORMATS:
            raise UnsupportedSchemaError(f"format: {value}", here, name)
        elif key == "type":
            for kind in _as_list(value):
                if kind not in _TYPES:
                    raise UnsupportedSchemaError(f"type: {kind}", here, name)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
