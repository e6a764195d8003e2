"""Validating documents against the contract, in three tiers.

``is_valid`` answers yes or no, ``iter_errors`` yields every :class:`ContractError`,
and ``validate`` raises the most relevant one. The request and response helpers
pick the schema from the model registry and the OpenAPI document.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from ._formats import format_checker
from ._resources import (
    SCHEMA_BASE_URI,
    inlined_schema,
    load_openapi,
    schema_registry,
)
from .errors import ContractError
from .facts import did_you_mean

__all__ = [
    "is_valid",
    "is_valid_response",
    "iter_errors",
    "iter_media_errors",
    "iter_response_errors",
    "response_schema_name",
    "validate",
    "validate_response",
]

MOCK_ONLY = "x-wavespeed-mock-only"
"""The schema keyword that marks a branch as the mock's convenience, not the API's."""
CONTROL_PREFIX = "/_mock"
"""Where the control API lives (never part of the WaveSpeed API)."""


# -- schemas and validators -------------------------------------------------------


def _resolve(ref: str, base: str) -> dict[str, Any]:
    resolver = schema_registry().resolver(base_uri=base)
    contents: dict[str, Any] = resolver.lookup(ref).contents
    return contents


def _strict_copy(schema: dict[str, Any], base: str) -> dict[str, Any]:
    """The strict variant: no unknown top-level fields, no mock-only conveniences."""
    strict = copy.deepcopy(schema)
    strict["additionalProperties"] = False

    _prune_mock_only(strict, base)
    return strict


def _prune_mock_only(node: Any, base: str) -> None:
    """Drop the mock-only branches of every ``anyOf``/``oneOf`` below ``node``.

    A module-level function: a nested recursive one is a reference cycle made on
    every call, left to the cyclic collector (issue 26).
    """
    if isinstance(node, dict):
        for key in ("anyOf", "oneOf"):
            if key in node:
                node[key] = [
                    branch
                    for branch in node[key]
                    if not (
                        branch.get(MOCK_ONLY)
                        or (
                            "$ref" in branch
                            and _resolve(branch["$ref"], base).get(MOCK_ONLY)
                        )
                    )
                ]
        for value in node.values():
            _prune_mock_only(value, base)
    elif isinstance(node, list):
        for value in node:
            _prune_mock_only(value, base)


@cache
def _validator(name: str, strict: bool = False) -> Draft202012Validator:
    schema = inlined_schema(name)
    if strict:
        schema = _strict_copy(schema, SCHEMA_BASE_URI + name)
    return Draft202012Validator(
        schema, registry=schema_registry(), format_checker=format_checker()
    )


def _schema_file(schema: str) -> str:
    return schema if schema.endswith(".json") else schema + ".json"


# -- turning jsonschema errors into ContractErrors -------------------------------


def _json_path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _to_contract_error(error: ValidationError, schema_name: str) -> ContractError:
    path = _json_path(error.absolute_path)
    instance = error.instance
    message = error.message
    suggestion: str | None = None
    if error.validator == "required" and isinstance(error.instance, dict):
        # jsonschema yields one error per missing name; its message starts with it.
        absent = [r for r in error.validator_value if r not in error.instance]
        missing = next((r for r in absent if error.message.startswith(repr(r))), None)
        missing = missing if missing is not None else (absent[0] if absent else None)
        if missing is not None:
            path = f"{path}.{missing}"
            message = f"{missing!r} is required but missing"
            instance = None
            suggestion = did_you_mean(missing, error.instance)
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        extras = [k for k in error.instance if k not in known]
        if extras:
            extra = extras[0]
            path = f"{path}.{extra}"
            instance = error.instance[extra]
            message = f"unknown field {extra!r} (strict mode rejects fields the contract does not name)"
            suggestion = did_you_mean(extra, known)
    elif error.validator == "pattern":
        described = error.schema.get("description", "")
        message = f"{error.instance!r:.80} is not in the expected form" + (
            f": {described}" if described else ""
        )
    elif error.validator == "format":
        message = f"{error.instance!r:.80} is not a valid {error.validator_value}"
    elif error.validator in ("maxLength", "minLength") and isinstance(
        error.instance, str
    ):
        bound = error.validator_value
        word = "at most" if error.validator == "maxLength" else "at least"
        message = f"has {len(error.instance)} characters; expected {word} {bound}"
    return ContractError(
        message,
        path=path,
        schema_path="/" + "/".join(str(p) for p in error.absolute_schema_path),
        instance=instance,
        validator=str(error.validator),
        suggestion=suggestion,
        schema_name=schema_name,
    )


def _by_relevance(error: ValidationError) -> ValidationError:
    """The most telling cause of an anyOf/oneOf failure.

    When every branch fails on type, the outer error says it best; otherwise the
    first branch that failed on something other than type (the documented form
    comes first in the schema, mock-only conveniences after it).
    """
    while error.validator in ("anyOf", "oneOf") and error.context:
        causes = [e for e in error.context if e.validator != "type"]
        if not causes:
            types = sorted(
                {str(t) for e in error.context for t in _as_list(e.validator_value)}
            )
            error.message = (
                f"{error.instance!r:.80} is not of type {' or '.join(types)}"
            )
            return error
        error = min(
            causes, key=lambda e: (list(e.relative_schema_path)[:1], len(e.path))
        )
    return error


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- the three tiers, for any schema ----------------------------------------------


def iter_errors(
    schema: str, instance: Any, *, strict: bool = False
) -> Iterator[ContractError]:
    """Every violation of ``schema`` (a file name such as ``prediction.json``)."""
    name = _schema_file(schema)
    for error in _validator(name, strict).iter_errors(instance):
        yield _to_contract_error(_by_relevance(error), name)


def is_valid(schema: str, instance: Any, *, strict: bool = False) -> bool:
    return bool(_validator(_schema_file(schema), strict).is_valid(instance))


def validate(schema: str, instance: Any, *, strict: bool = False) -> None:
    """Raise the most relevant :class:`ContractError`, or return None."""
    name = _schema_file(schema)
    error = best_match(_validator(name, strict).iter_errors(instance))
    if error is not None:
        raise _to_contract_error(_by_relevance(error), name)


# -- responses ---------------------------------------------------------------------


@cache
def _operations(document: str) -> list[tuple[re.Pattern[str], str, dict[str, Any]]]:
    doc = load_openapi(document)
    found = []
    for template, item in doc.get("paths", {}).items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
        for method, operation in item.items():
            if method in ("get", "post", "put", "delete", "patch"):
                found.append((pattern, method, operation))
    # Literal paths before templated ones: /predictions/delete wins over /predictions/{id}.
    found.sort(key=lambda op: op[0].pattern.count("[^/]+"))
    return found


@cache
def _catalogue_submit(document: str) -> dict[str, Any] | None:
    """The operation marked ``x-catalogue-submit``: how every model's submit answers."""
    for _, _, operation in _operations(document):
        if operation.get("x-catalogue-submit"):
            return operation
    return None


def _document_for(path: str) -> str:
    return "mock-control.yaml" if path.startswith(CONTROL_PREFIX) else "openapi.yaml"


def _declared_response(method: str, path: str, status: int) -> dict[str, Any] | None:
    """The response object declared for ``status`` (None: no such operation).

    Raises:
        ContractError: the operation exists but does not declare the status.
    """
    document = _document_for(path)
    doc = load_openapi(document)
    matching = [(p, m, op) for p, m, op in _operations(document) if p.match(path)]
    # The most literal path that matches owns the URL (OpenAPI's rule): GET on
    # /predictions/delete is a wrong method there, not a GET /predictions/{id}.
    operation = next(
        (
            op
            for pattern, m, op in matching
            if pattern is matching[0][0] and m == method.lower()
        ),
        None,
    )
    if (
        operation is None
        and method.upper() == "POST"
        and not matching
        and path.startswith("/api/v3/")
        and "/" in path[len("/api/v3/") :]
    ):
        # A submit to a catalogue model: answered as the contract's submit.
        operation = _catalogue_submit(document)
    if operation is None:
        if status >= 400:
            return None  # unknown paths and wrong methods answer the envelope
        raise ContractError(
            f"no operation {method.upper()} {path} in {document}",
            path="$",
            instance=path,
        )
    responses = operation.get("responses", {})
    response = (
        responses.get(str(status))
        or responses.get(f"{status // 100}XX")
        or responses.get("default")
    )
    if response is None:
        raise ContractError(
            f"HTTP {status} is not declared for {method.upper()} {path} "
            f"(declared: {', '.join(responses)})",
            path="$",
            instance=status,
        )
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    found: dict[str, Any] = response
    return found


def response_schema_name(method: str, path: str, status: int) -> str | None:
    """The schema file a JSON answer must match, or None for a non-JSON answer.

    Raises:
        ContractError: the status is not declared for that operation.
    """
    response = _declared_response(method, path, status)
    if response is None:
        return "error.json"
    media = response.get("content", {}).get("application/json")
    if media is None:
        return None
    ref = media["schema"]["$ref"]
    return str(ref).rsplit("/", 1)[-1]


def iter_media_errors(
    method: str, path: str, status: int, media_type: str | None, *, empty: bool
) -> Iterator[ContractError]:
    """Violations of an answer that is not JSON (a gateway page, an empty body).

    Its media type (parameters left off) must be declared for the status; an
    empty body without one needs the response's ``x-empty-body: true``.
    """
    try:
        response = _declared_response(method, path, status)
    except ContractError as exc:
        yield exc
        return
    if response is None and status >= 500:
        # a gateway fails unknown paths as it fails known ones
        response = load_openapi("openapi.yaml")["components"]["responses"][
            "ServerError"
        ]
    content = (response or {}).get("content", {})
    if media_type is None and empty and (response or {}).get("x-empty-body"):
        return
    kind = (media_type or "").split(";")[0].strip().lower()
    if kind not in content:
        yield ContractError(
            f"HTTP {status} answered as {kind or 'an untyped body'}, not declared "
            f"for {method.upper()} {path} (declared: {', '.join(content) or 'none'})",
            path="$",
            instance=kind,
        )


def iter_response_errors(
    method: str, path: str, status: int, body: Any
) -> Iterator[ContractError]:
    """Every violation in a response ``body`` answered with ``status``."""
    try:
        name = response_schema_name(method, path, status)
    except ContractError as exc:
        yield exc
        return
    if name is not None:
        yield from iter_errors(name, body)


def is_valid_response(method: str, path: str, status: int, body: Any) -> bool:
    return next(iter_response_errors(method, path, status, body), None) is None


def validate_response(method: str, path: str, status: int, body: Any) -> None:
    """Check that a server's JSON answer matches the contract for that operation.

    Raises:
        ContractError: the status is undeclared or the body breaks its schema.
    """
    name = response_schema_name(method, path, status)
    if name is not None:
        validate(name, body)
