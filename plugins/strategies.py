"""Hypothesis strategies generated from the contract's JSON Schemas.

The schemas under ``wavespeed_mock/contracts/schemas/`` are the truth; this module
translates the small subset of JSON Schema they use into Hypothesis strategies
instead of restating the fields by hand. Any keyword outside that subset raises
:class:`~wavespeed_mock.plugins.UnsupportedSchemaError` for the whole document, so
a contract change cannot silently make the strategies wrong.

Generated values are kept small and readable: strings, lists and extra object
properties are capped (``MAX_TEXT_SIZE``, ``MAX_ITEMS``, ``MAX_EXTRA_PROPERTIES``,
``MAX_PROMPT_SIZE``) well below the contract's bounds (a 30 MB data: URI bound
never makes Hypothesis build a 30 MB string), URLs look like
``https://example.com/knight.png``, and a few definitions get targeted generators
(prompts with ``<S>…<E>`` / ``<AUDCAP>…<ENDAUDCAP>`` tags, seeds with their bounds,
data: URIs holding a real tiny PNG). Every targeted value is still checked
against its schema.

Example:
    >>> from hypothesis import given
    >>> from wavespeed_mock.contracts import validate_request
    >>> from wavespeed_mock.plugins import request_bodies
    >>> @given(request_bodies("character-ai/ovi/text-to-video", strict=True))
    ... def test_valid(body):
    ...     validate_request("character-ai/ovi/text-to-video", body, strict=True)
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urldefrag, urljoin

from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ..contracts import (
    FACT_KEYWORDS,
    MOCK_ONLY,
    SCHEMA_BASE_URI,
    ModelSpec,
    did_you_mean,
    format_checker,
    get_model,
    load_schema,
    schema_names,
    schema_registry,
    seed_rule,
)
from .errors import UnknownSchemaError, UnsupportedSchemaError

__all__ = [
    "ANNOTATION_KEYWORDS",
    "ASSERTION_KEYWORDS",
    "MAX_EXTRA_PROPERTIES",
    "MAX_ITEMS",
    "MAX_PROMPT_SIZE",
    "MAX_TEXT_SIZE",
    "SUPPORTED_FORMATS",
    "InvalidBody",
    "check_schema_supported",
    "from_schema",
    "invalid_request_bodies",
    "prompts",
    "request_bodies",
    "seeds",
]


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

# A real 1x1 PNG, so that a server which decodes a generated data: URI gets an image.
_TINY_PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJ"
    "RU5ErkJggg=="
)
_HOSTS = ("example.com", "cdn.example.org", "images.example.net", "127.0.0.1:8000")
_SCHEMES = ("https", "http", "HTTPS")
_VOCABULARY = (
    "a",
    "the",
    "knight",
    "ocean",
    "wave",
    "sunrise",
    "rain",
    "city",
    "neon",
    "forest",
    "slowly",
    "walks",
    "smiles",
    "camera",
    "pans",
    "close-up",
    "wide",
    "shot",
    "of",
    "glowing",
    "ancient",
    "robot",
    "cat",
    "dances",
    "under",
    "stars",
    "cinematic",
)
_SPEECH = ("Hello there.", "I will defend this land.", "Where are we going?", "Look!")
_AUDIO = ("Thunder rolls.", "Soft piano music.", "Waves crash on rocks.", "Birdsong.")


# -- public strategies ---------------------------------------------------------------


def from_schema(
    schema: str | Mapping[str, Any], *, strict: bool = False
) -> st.SearchStrategy[Any]:
    """Values that conform to a contract schema.

    Args:
        schema: a schema file name (``"prediction.json"``, the suffix may be left
            out), a name with a JSON pointer (``"common.json#/$defs/seed"``), or a
            schema dict (its ``$ref``s resolve against the contract's schemas).
        strict: leave out branches marked ``x-wavespeed-mock-only`` (the mock's own
            conveniences, such as data: URIs), as the real API promises.

    Raises:
        UnsupportedSchemaError: the document uses a keyword the translator does
            not handle.
        UnknownSchemaError: no schema file has that name.

    Example:
        >>> from_schema("prediction-envelope.json")  # doctest: +SKIP
    """
    node, base, registry = _locate(schema)
    return _Translator(registry, strict=strict).strategy(node, base)


def request_bodies(
    model: str | ModelSpec, *, strict: bool = False, sync_mode: bool = False
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid submit bodies for ``model``, generated from its request schema.

    Strict bodies hold only the documented fields and forms (no data: URIs, no
    unknown fields); the others may carry both, which the mock accepts.

    Args:
        model: a registered model id.
        strict: only what the real API documents.
        sync_mode: also generate ``"enable_sync_mode": true``, whose submit blocks
            until the clip is done. Off by default, so that a test submitting many
            bodies gets each answer at once.

    Bodies never carry ``webhook_url``: a webhook is the test's to choose (with
    ``enable_base64_output`` the API refuses it).

    Example:
        >>> bodies = request_bodies("character-ai/ovi/image-to-video", strict=True)
    """
    spec = _spec(model)
    schema = spec.declared_schema(strict=strict)
    check_schema_supported(spec.contract or schema)
    translator = _Translator(schema_registry(), strict=strict)
    strategy: st.SearchStrategy[dict[str, Any]] = translator.strategy(
        schema, spec.schema_base
    )
    return strategy.map(functools.partial(_submittable, sync_mode=sync_mode))


def _submittable(body: dict[str, Any], *, sync_mode: bool) -> dict[str, Any]:
    dropped = {_WEBHOOK_FIELD}
    if not sync_mode and body.get(_SYNC_FIELD) is True:
        dropped.add(_SYNC_FIELD)
    if dropped.isdisjoint(body):
        return body
    return {k: v for k, v in body.items() if k not in dropped}


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


def invalid_request_bodies(
    model: str | ModelSpec, *, strict: bool = False
) -> st.SearchStrategy[InvalidBody]:
    """Submit bodies for ``model`` that each break exactly one rule.

    A valid body (from :func:`request_bodies`) gets one change: a required field
    removed, one field given a value that breaks one of its rules, an unknown field
    added (strict mode), or the whole body replaced by a non-object. The record
    says which JSON path breaks and which rule, so a test can check that the error
    names that field.

    Example:
        >>> T2V = "character-ai/ovi/text-to-video"
        >>> @given(invalid_request_bodies(T2V))  # doctest: +SKIP
        ... def test_rejected(case):
        ...     answer = client.post(f"/api/v3/{T2V}", json=case.body)
        ...     assert answer.status_code == 400
        ...     assert case.path.removeprefix("$.") in answer.json()["message"]
    """
    spec = _spec(model)
    schema = spec.declared_schema(strict=strict)
    base = spec.schema_base
    groups: dict[tuple[str, str], list[_Mutation]] = {}
    for mutation in _object_mutations(schema, base, strict=strict):
        groups.setdefault((mutation.path, mutation.rule), []).append(mutation)
    # Pick the broken rule first, then a value: every rule gets its turn, however
    # many wrong-typed values one field has.
    mutations = st.sampled_from(list(groups.values())).flatmap(st.sampled_from)
    return st.builds(_Mutation.apply, mutations, request_bodies(spec, strict=strict))


def _spec(model: str | ModelSpec) -> ModelSpec:
    """A model of the built-in catalogue by id, or a spec as it is (a user's)."""
    return model if isinstance(model, ModelSpec) else get_model(model)


def prompts(
    *, min_size: int | None = None, max_size: int | None = None, tags: bool = True
) -> st.SearchStrategy[str]:
    """Readable prompts, often tagged: `<S>…<E>` speech, `<AUDCAP>…<ENDAUDCAP>` audio.

    Lengths stay within the contract's prompt bounds and ``max_size`` (default
    ``MAX_PROMPT_SIZE``).
    """
    schema = load_schema("common.json")["$defs"]["prompt"]
    low = max(int(schema.get("minLength", 0)), min_size or 0)
    high = min(
        int(schema.get("maxLength", MAX_PROMPT_SIZE)),
        MAX_PROMPT_SIZE if max_size is None else max_size,
    )
    if low > high or high < 1:
        raise ValueError(
            f"prompts(min_size={min_size!r}, max_size={max_size!r}): no prompt fits; "
            f"the contract allows {schema.get('minLength')} to "
            f"{schema.get('maxLength')}"
        )
    vocabulary = st.sampled_from(_VOCABULARY)
    # Mostly plain words, sometimes any letters: the server must cope with Unicode.
    word = st.one_of(
        vocabulary,
        vocabulary,
        vocabulary,
        st.text(st.characters(codec="utf-8", categories=["L"]), min_size=1, max_size=8),
    )
    sentence = st.lists(word, min_size=1, max_size=8).map(" ".join)
    speech = (st.sampled_from(_SPEECH) | sentence).map(lambda s: f"<S>{s}<E>")
    audio = (st.sampled_from(_AUDIO) | sentence).map(
        lambda s: f"<AUDCAP>{s}<ENDAUDCAP>"
    )
    tail = st.lists(speech | audio, max_size=3) if tags else st.just([])

    def join(head: str, segments: list[str], separator: str) -> str:
        parts = [head]
        for segment in segments:  # drop whole tags rather than cut one in half
            if len(separator.join([*parts, segment])) <= high:
                parts.append(segment)
        return separator.join(parts)[:high]

    return st.builds(join, sentence, tail, st.sampled_from(["\n", " "])).filter(
        lambda p: len(p) >= low
    )


def seeds() -> st.SearchStrategy[int]:
    """Request seeds: the random-seed value, and seeds within the contract's bounds.

    The random-seed value (-1) and both bounds are always among the first tried.
    """
    rule = seed_rule()
    low, high = rule.minimum, rule.maximum
    edges = sorted({rule.random, low, low + 1, high - 1, high})
    return st.sampled_from(edges) | st.integers(low, high)


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


def _readable_characters() -> st.SearchStrategy[str]:
    ascii_printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
    return st.one_of(
        ascii_printable,
        ascii_printable,
        ascii_printable,
        st.characters(codec="utf-8", categories=["L", "N"]),
    )


def _urls(pattern: str | None) -> st.SearchStrategy[str]:
    schemes = [
        s
        for s in _SCHEMES
        if pattern is None or re.search(pattern, f"{s}://example.com/a.png")
    ]
    if not schemes:  # a pattern that wants another scheme: build from the pattern
        return _pattern_strings(str(pattern))
    segment = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,11}", fullmatch=True)
    return st.builds(
        lambda scheme, host, path, suffix: (
            f"{scheme}://{host}/{'/'.join(path)}{suffix}"
        ),
        st.sampled_from(schemes),
        st.sampled_from(_HOSTS),
        st.lists(segment, min_size=1, max_size=3),
        st.sampled_from([".png", ".jpg", ".webp", ".mp4", ""]),
    )


def _datetimes() -> st.SearchStrategy[str]:
    def render(moment: datetime, digits: int, zone: str) -> str:
        fraction = f"{moment.microsecond:06d}000"[:digits]
        return f"{moment:%Y-%m-%dT%H:%M:%S}" + (f".{fraction}" if digits else "") + zone

    # Real answers carry 0, 2, 3 or 9 fractional digits (Go's RFC3339Nano).
    return st.builds(
        render,
        st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
        st.sampled_from([0, 2, 3, 6, 9]),
        st.sampled_from(["Z", "Z", "+00:00"]),
    )


def _pattern_strings(pattern: str) -> st.SearchStrategy[str]:
    """Strings that contain a match: JSON Schema patterns are unanchored searches."""
    core = st.from_regex(pattern, fullmatch=True)
    filler = st.text(st.sampled_from("abcxyz0123456789"), max_size=12)
    prefix = st.just("") if pattern.startswith("^") else filler
    suffix = (
        st.just("") if pattern.endswith("$") and not pattern.endswith("\\$") else filler
    )
    return st.builds(lambda a, b, c: a + b + c, prefix, core, suffix)


def _data_uris() -> st.SearchStrategy[str]:
    return st.builds(
        lambda kind, params: f"data:image/{kind}{params};base64,{_TINY_PNG_B64}",
        st.sampled_from(["png", "PNG"]),
        st.sampled_from(["", ";name=tiny.png"]),
    )


def _json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-1000, 1000)
        | st.floats(-1e6, 1e6, allow_nan=False)
        | st.text(_readable_characters(), max_size=12)
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.text(_readable_characters(), max_size=8), inner, max_size=3
            )
        ),
        max_leaves=6,
    )


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
