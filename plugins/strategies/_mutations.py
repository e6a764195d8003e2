"""One broken rule at a time: the mutations behind ``invalid_request_bodies``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from ...contracts import (
    format_checker,
    schema_registry,
)
from ._domain import _TINY_PNG_B64
from ._translator import _absolute_refs, _Translator


@dataclass(frozen=True)
class InvalidBody:
    """A submit body that breaks exactly one rule of the contract.

    Attributes:
        body: the body to send.
        path: JSON path of the broken field (``$.seed``; ``$`` for the body itself).
        rule: the JSON Schema keyword it breaks (``required``, ``type``,
            ``maximum``, ``anyOf``, ``additionalProperties``, ...).
    """

    body: Any
    path: str
    rule: str


# -- one broken rule at a time ---------------------------------------------------------


@dataclass(frozen=True)
class _Mutation:
    path: str
    rule: str
    key: str | None = None  # None: replace the whole body
    value: Any = None
    remove: bool = False

    def apply(self, body: dict[str, Any]) -> InvalidBody:
        if self.key is None:
            return InvalidBody(self.value, self.path, self.rule)
        changed = {k: v for k, v in body.items() if k != self.key}
        if not self.remove:
            changed[self.key] = self.value
        return InvalidBody(changed, self.path, self.rule)


# Fields the API does not name; typos of real ones make the "did you mean" hint show.
_UNKNOWN_FIELDS = ("negative_prompt", "promt", "webhook_url")
_BAD_STRINGS = (
    "",
    "x",
    "not a url",
    "example.com/a.png",
    "https://",
    "https://exa mple.com/a.png",
    "ftp://example.com/a.png",
    f"data:image/png;base64,{_TINY_PNG_B64}",
)
# Not None: httpx's json=None sends no body at all, a different test than JSON null.
_NOT_OBJECTS: tuple[Any, ...] = ([], "body", 7)
_BAD_SCALARS: tuple[Any, ...] = (None, True, 0, 1.5, "text", [], {})


def _object_mutations(
    schema: Mapping[str, Any], base: str, *, strict: bool
) -> list[_Mutation]:
    translator = _Translator(schema_registry(), strict=strict)
    is_valid = translator.validator(schema, base)
    mutations = [
        _Mutation("$", "type", value=value)
        for value in _NOT_OBJECTS
        if not is_valid(value)
    ]
    properties: Mapping[str, Any] = schema.get("properties", {})
    for key in schema.get("required", []):
        mutations.append(_Mutation(f"$.{key}", "required", key=key, remove=True))
    for key, sub in properties.items():
        for rule, value in _bad_values(translator, sub, base):
            mutations.append(_Mutation(f"$.{key}", rule, key=key, value=value))
    if schema.get("additionalProperties", True) is False:
        for name in _UNKNOWN_FIELDS:
            if name not in properties:
                mutations.append(
                    _Mutation(f"$.{name}", "additionalProperties", key=name, value="x")
                )
    return mutations


def _bad_values(
    translator: _Translator, node: Any, base: str
) -> Iterator[tuple[str, Any]]:
    """Values that break exactly one rule of ``node``, each with that rule's keyword."""
    checker = Draft202012Validator(
        _absolute_refs(node, base),
        registry=translator.registry,
        format_checker=format_checker(),
    )
    seen: set[tuple[str, str]] = set()
    for value in [*_BAD_SCALARS, *_BAD_STRINGS, *_candidates(translator, node, base)]:
        errors = list(checker.iter_errors(value))
        if len(errors) != 1:
            continue
        rule = str(errors[0].validator)
        key = (rule, repr(value))
        if key not in seen:
            seen.add(key)
            yield rule, value


def _candidates(
    translator: _Translator, node: Any, base: str, depth: int = 0
) -> Iterator[Any]:
    """Values just outside each bound that ``node`` or its references declare."""
    if not isinstance(node, Mapping) or depth > 8:
        return
    if "$ref" in node:
        yield from _candidates(
            translator, *translator.lookup(node["$ref"], base), depth + 1
        )
    for keyword in ("anyOf", "oneOf"):
        for branch in node.get(keyword, []):
            yield from _candidates(translator, branch, base, depth + 1)
    for keyword, step in (("minimum", -1), ("maximum", 1)):
        if keyword in node:
            yield node[keyword] + step
    for keyword in ("exclusiveMinimum", "exclusiveMaximum"):
        if keyword in node:
            yield node[keyword]
    if node.get("minLength", 0) > 0:
        yield "x" * (node["minLength"] - 1)
    if "maxLength" in node and node["maxLength"] < 100_000:
        # Too long, and otherwise in the most likely form: a URL or plain text.
        yield "https://example.com/" + "x" * (node["maxLength"] - 19)
        yield "x" * (node["maxLength"] + 1)
    for value in node.get("enum", []):
        if isinstance(value, str):
            yield value + "x"
            yield value.upper() + " "
        elif isinstance(value, int) and not isinstance(value, bool):
            yield value + 1
    if "const" in node:
        yield [node["const"]]
