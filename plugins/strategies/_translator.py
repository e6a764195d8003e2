"""The translator: a JSON Schema node (and the ``$ref``s it follows) as a
Hypothesis strategy, with the domain generators for the definitions they own."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urldefrag, urljoin

from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry

from ...contracts import (
    MOCK_ONLY,
    format_checker,
)
from ..errors import UnsupportedSchemaError
from ._domain import (
    _data_uris,
    _datetimes,
    _json_values,
    _pattern_strings,
    _readable_characters,
    _urls,
    prompts,
    seeds,
)
from ._keywords import (
    _DATA_URI_REF,
    _PROMPT_REF,
    _SEED_REF,
    _TYPES,
    _UNBOUNDED,
    ANNOTATION_KEYWORDS,
    MAX_EXTRA_PROPERTIES,
    MAX_ITEMS,
    MAX_TEXT_SIZE,
    _as_list,
)

# -- the translator ------------------------------------------------------------------


def _absolute_refs(node: Any, base: str) -> Any:
    """A copy whose ``$ref``s are absolute, so it validates outside its document."""
    if isinstance(node, Mapping):
        return {
            key: urljoin(base, value) if key == "$ref" else _absolute_refs(value, base)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_absolute_refs(value, base) for value in node]
    return node


class _Translator:
    def __init__(self, registry: Registry[Any], *, strict: bool) -> None:
        self.registry = registry
        self.strict = strict
        self.resolver = registry.resolver()
        self.overrides: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
            _PROMPT_REF: prompts,
            _SEED_REF: seeds,
            _DATA_URI_REF: _data_uris,
        }

    def validator(self, node: Any, base: str) -> Callable[[Any], bool]:
        checker = Draft202012Validator(
            _absolute_refs(node, base),
            registry=self.registry,
            format_checker=format_checker(),
        )
        is_valid: Callable[[Any], bool] = checker.is_valid
        return is_valid

    def lookup(self, ref: str, base: str) -> tuple[Any, str]:
        target = urljoin(base, ref)
        return self.resolver.lookup(target).contents, urldefrag(target).url

    def is_mock_only(self, node: Any, base: str) -> bool:
        if not isinstance(node, Mapping):
            return False
        if node.get(MOCK_ONLY):
            return True
        return "$ref" in node and self.is_mock_only(*self.lookup(node["$ref"], base))

    def strategy(self, node: Any, base: str, depth: int = 0) -> st.SearchStrategy[Any]:
        if depth > 32:
            raise UnsupportedSchemaError("<a recursive $ref>", "", base)
        if isinstance(node, bool):
            return _json_values() if node else st.nothing()
        if self.strict and node.get(MOCK_ONLY):
            return st.nothing()
        if "$ref" in node:
            return self._reference(node, base, depth)
        if "allOf" in node:
            # Rules across fields (a scope that requires a field): values are
            # made from the rest of the node and kept where they pass them.
            rest = {k: v for k, v in node.items() if k != "allOf"}
            keep = self.validator({"allOf": node["allOf"]}, base)
            return self.strategy(rest, base, depth + 1).filter(keep)
        for keyword in ("anyOf", "oneOf"):
            if keyword in node:
                return self._alternatives(node, keyword, base, depth)
        rest = {k: v for k, v in node.items() if k not in ("const", "enum")}
        if "const" in node:
            return st.just(node["const"])
        if "enum" in node:
            fits = self.validator(rest, base)
            return st.sampled_from([value for value in node["enum"] if fits(value)])
        return st.one_of(
            *[self._typed(kind, node, base, depth) for kind in _types_of(node)]
        )

    def _reference(
        self, node: Mapping[str, Any], base: str, depth: int
    ) -> st.SearchStrategy[Any]:
        target = urljoin(base, node["$ref"])
        contents, new_base = self.lookup(node["$ref"], base)
        if self.strict and self.is_mock_only(contents, new_base):
            return st.nothing()
        if target in self.overrides:
            # Targeted generators are readable; the schema still has the last word.
            strategy = self.overrides[target]().filter(
                self.validator(contents, new_base)
            )
        else:
            strategy = self.strategy(contents, new_base, depth + 1)
        siblings = _assertions(node, drop=("$ref",))
        return strategy.filter(self.validator(siblings, base)) if siblings else strategy

    def _alternatives(
        self, node: Mapping[str, Any], keyword: str, base: str, depth: int
    ) -> st.SearchStrategy[Any]:
        branches = [
            b for b in node[keyword] if not (self.strict and self.is_mock_only(b, base))
        ]
        strategy = st.one_of(*[self.strategy(b, base, depth + 1) for b in branches])
        siblings = _assertions(node, drop=(keyword,))
        if siblings:
            strategy = strategy.filter(self.validator(siblings, base))
        if keyword == "oneOf":
            checks = [self.validator(b, base) for b in branches]
            strategy = strategy.filter(lambda v: sum(check(v) for check in checks) == 1)
        return strategy

    def _typed(
        self, kind: str, node: Mapping[str, Any], base: str, depth: int
    ) -> st.SearchStrategy[Any]:
        if kind == "null":
            return st.none()
        if kind == "boolean":
            return st.booleans()
        if kind == "integer":
            return _integers(node)
        if kind == "number":
            return _integers(node) | _floats(node)
        if kind == "string":
            return _strings(node)
        if kind == "array":
            low = int(node.get("minItems", 0))
            high = min(int(node.get("maxItems", MAX_ITEMS)), max(low, MAX_ITEMS))
            items = self.strategy(node.get("items", True), base, depth + 1)
            return st.lists(items, min_size=low, max_size=high)
        return self._object(node, base, depth)

    def _object(
        self, node: Mapping[str, Any], base: str, depth: int
    ) -> st.SearchStrategy[Any]:
        properties: Mapping[str, Any] = node.get("properties", {})
        required = list(node.get("required", []))
        fixed = {
            key: self.strategy(properties.get(key, True), base, depth + 1)
            for key in required
        }
        optional = {
            key: self.strategy(sub, base, depth + 1)
            for key, sub in properties.items()
            if key not in fixed and not (self.strict and self.is_mock_only(sub, base))
        }
        known = st.fixed_dictionaries(fixed, optional=optional)
        extra_schema = node.get("additionalProperties", True)
        if extra_schema is False:
            return known
        names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True).filter(
            lambda name: name not in properties
        )
        extras = st.dictionaries(
            names,
            self.strategy(extra_schema, base, depth + 1),
            max_size=MAX_EXTRA_PROPERTIES,
        )
        return st.builds(lambda a, b: {**b, **a}, known, extras)


def _assertions(node: Mapping[str, Any], drop: tuple[str, ...]) -> dict[str, Any]:
    return {
        k: v for k, v in node.items() if k not in ANNOTATION_KEYWORDS and k not in drop
    }


def _types_of(node: Mapping[str, Any]) -> list[str]:
    if "type" in node:
        return [str(kind) for kind in _as_list(node["type"])]
    hints = (
        ("object", ("properties", "required", "additionalProperties")),
        ("array", ("items", "minItems", "maxItems")),
        ("string", ("minLength", "maxLength", "pattern", "format")),
        ("number", ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")),
    )
    kinds = [kind for kind, words in hints if any(w in node for w in words)]
    # Without a type, a keyword constrains only its own type; the rest pass as is.
    return kinds or sorted(_TYPES)


def _bounds(node: Mapping[str, Any]) -> tuple[float, float, bool, bool]:
    low, high = float(-_UNBOUNDED), float(_UNBOUNDED)
    exclude_low = exclude_high = False
    if "minimum" in node:
        low = float(node["minimum"])
    if "exclusiveMinimum" in node and float(node["exclusiveMinimum"]) >= low:
        low, exclude_low = float(node["exclusiveMinimum"]), True
    if "maximum" in node:
        high = float(node["maximum"])
    if "exclusiveMaximum" in node and float(node["exclusiveMaximum"]) <= high:
        high, exclude_high = float(node["exclusiveMaximum"]), True
    return low, high, exclude_low, exclude_high


def _integers(node: Mapping[str, Any]) -> st.SearchStrategy[int]:
    # Integer bounds stay integers: through a float, 2**63 - 1 becomes 2**63.
    low = _int_bound(node, "minimum", "exclusiveMinimum", -_UNBOUNDED, up=True)
    high = _int_bound(node, "maximum", "exclusiveMaximum", _UNBOUNDED, up=False)
    if low > high:
        return st.nothing()
    edges = sorted({v for v in (low, 0, high) if low <= v <= high})
    return st.sampled_from(edges) | st.integers(low, high)


def _int_bound(
    node: Mapping[str, Any], inclusive: str, exclusive: str, default: int, *, up: bool
) -> int:
    """The tightest integer bound the two keywords give (``up``: a lower bound)."""
    candidates = []
    if inclusive in node:
        value = node[inclusive]
        candidates.append(
            math.ceil(value)
            if up
            else math.floor(value)
            if not isinstance(value, int)
            else value
        )
    if exclusive in node:
        value = node[exclusive]
        if isinstance(value, int):
            candidates.append(value + 1 if up else value - 1)
        else:
            candidates.append(math.floor(value) + 1 if up else math.ceil(value) - 1)
    if not candidates:
        return default
    return max(candidates) if up else min(candidates)


def _floats(node: Mapping[str, Any]) -> st.SearchStrategy[float]:
    low, high, exclude_low, exclude_high = _bounds(node)
    return st.floats(
        low,
        high,
        exclude_min=exclude_low,
        exclude_max=exclude_high,
        allow_nan=False,
        allow_infinity=False,
    )


def _strings(node: Mapping[str, Any]) -> st.SearchStrategy[str]:
    low = int(node.get("minLength", 0))
    high = min(int(node.get("maxLength", MAX_TEXT_SIZE)), max(low, MAX_TEXT_SIZE))
    pattern: str | None = node.get("pattern")
    kind = node.get("format")
    if kind is None and pattern is None:
        return st.text(_readable_characters(), min_size=low, max_size=high)
    if kind == "uri":
        strategy = _urls(pattern)
    elif kind == "date-time":
        strategy = _datetimes()
    else:
        assert pattern is not None
        strategy = _pattern_strings(pattern)
    upper: int | None = node.get("maxLength")
    search = re.compile(pattern).search if pattern else None
    return strategy.filter(
        lambda s: (
            len(s) >= low
            and (upper is None or len(s) <= upper)
            and (search is None or search(s) is not None)
        )
    )
