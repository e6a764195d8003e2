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
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from ...contracts import (
    ModelSpec,
    get_model,
    schema_registry,
)
from ._domain import prompts, seeds
from ._keywords import (
    _SYNC_FIELD,
    _WEBHOOK_FIELD,
    ANNOTATION_KEYWORDS,
    ASSERTION_KEYWORDS,
    MAX_EXTRA_PROPERTIES,
    MAX_ITEMS,
    MAX_PROMPT_SIZE,
    MAX_TEXT_SIZE,
    SUPPORTED_FORMATS,
    _locate,
    check_schema_supported,
)
from ._mutations import InvalidBody, _Mutation, _object_mutations
from ._translator import _Translator

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
