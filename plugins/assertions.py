"""Asserting, inside a test, that an answer conforms to the contract."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..contracts import iter_errors, iter_response_errors
from ..contracts.errors import ContractError
from .errors import ContractViolation

if TYPE_CHECKING:
    import httpx

__all__ = ["assert_conforms"]

# Enough to see a pattern in what is wrong, not a wall of text.
_MAX_LISTED = 5


def assert_conforms(
    response_or_body: httpx.Response | Any,
    *,
    method: str | None = None,
    path: str | None = None,
    status: int | None = None,
    schema: str | None = None,
) -> None:
    """Fail the test unless an answer conforms to the contract.

    Give an ``httpx.Response`` or a ``requests.Response`` (method, path and status
    come from it), or a body with either ``method``, ``path`` and ``status`` (the
    OpenAPI document picks the schema) or a ``schema`` file name. A plain dict
    with none of these is a prediction envelope (``data.id`` and ``data.status``,
    what ``wavespeed.Client.get_result`` returns) or an error envelope
    (``{code, message}``). Explicit arguments win over the response's.

    Raises:
        ContractViolation: an ``AssertionError`` naming the JSON path, the violated
            rule (``schema-file#pointer``) and the offending value of the first
            violation, and listing the others.
        TypeError: no schema can be found: neither a response, nor a dict of a
            known shape, nor a schema, nor method, path and status.

    Example:
        >>> answer = client.get(f"/api/v3/predictions/{id}/result")  # doctest: +SKIP
        >>> assert_conforms(answer)  # doctest: +SKIP
        >>> assert_conforms({"code": 401, "message": "no key"}, schema="error.json")
    """
    __tracebackhide__ = True
    body = response_or_body
    if _is_response(response_or_body):
        response = response_or_body
        method = method or response.request.method
        path = path or _request_path(response.request)
        status = status if status is not None else response.status_code
        body = _json_body(response, method, path, status, schema)
        if body is _NOT_JSON:
            return
    elif schema is None and method is None and path is None and status is None:
        schema = _schema_of_shape(body)
    if schema is not None:
        errors = list(iter_errors(schema, body))
        subject = f"Body checked against {schema}"
    elif method is not None and path is not None and status is not None:
        errors = list(iter_response_errors(method, path, status, body))
        subject = f"Answer to {method.upper()} {path} (HTTP {status})"
    else:
        raise TypeError(
            "assert_conforms() needs an httpx.Response, a schema name, or method, "
            f"path and status together (got method={method!r}, path={path!r}, "
            f"status={status!r})"
        )
    if errors:
        raise _violation(subject, errors)


_NOT_JSON = object()


def _is_response(value: Any) -> bool:
    # Duck-typed (httpx.Response, requests.Response) so that importing this module
    # imports neither.
    return all(
        hasattr(value, name)
        for name in ("status_code", "request", "headers", "content")
    )


def _request_path(request: Any) -> str:
    """The path of an httpx request (``url.path``) or a requests one (``url`` is text)."""
    url = request.url
    if hasattr(url, "path"):
        return str(url.path)
    return urlsplit(str(url)).path


# A plain dict with no hint is checked against the schema its shape names: the
# SDK's get_result() returns the envelope, an error answer has no data.
_ENVELOPE = "prediction-envelope.json"
_ERROR = "error.json"


def _schema_of_shape(body: Any) -> str:
    __tracebackhide__ = True
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, dict) and "status" in data and "id" in data:
            return _ENVELOPE
        if "data" not in body and {"code", "message"} <= body.keys():
            return _ERROR
    raise TypeError(
        "assert_conforms() cannot tell which answer this is: give an httpx or "
        "requests Response, a prediction envelope (a dict with data.id and "
        "data.status, as wavespeed.Client.get_result returns), an error envelope "
        "({code, message}), or say schema='...' or method, path and status "
        f"(got {_short(body, 80)})"
    )


def _json_body(
    response: Any, method: str, path: str, status: int, schema: str | None
) -> Any:
    """The response's JSON body, ``_NOT_JSON`` for a declared non-JSON answer."""
    __tracebackhide__ = True
    if schema is None:
        from ..contracts import response_schema_name

        try:
            expected = response_schema_name(method, path, status)
        except ContractError as exc:
            raise _violation(
                f"Answer to {method.upper()} {path} (HTTP {status})", [exc]
            ) from None
        if expected is None:
            return _NOT_JSON
    try:
        return json.loads(response.content)
    except ValueError:
        raise ContractViolation(
            f"Answer to {method.upper()} {path} (HTTP {status}) breaks the contract:\n"
            f"  $: the body is not JSON (content-type "
            f"{response.headers.get('content-type')!r})\n"
            f"    Value: {response.content[:80]!r}",
            path="$",
            rule="application/json",
            instance=response.content[:80],
        ) from None


def _rule(error: ContractError) -> str:
    if error.schema_name or error.schema_path:
        return f"{error.schema_name}#{error.schema_path}"
    return "openapi.yaml (declared responses)"


def _violation(subject: str, errors: list[ContractError]) -> ContractViolation:
    first = errors[0]
    lines = [
        f"{subject} breaks the contract ({len(errors)} violation"
        f"{'' if len(errors) == 1 else 's'}):"
    ]
    for error in errors[:_MAX_LISTED]:
        lines.append(f"  {error.path}: {error.message}")
        if error.suggestion:
            lines.append(f"    Did you mean {error.suggestion!r}?")
        lines.append(f"    Rule: {_rule(error)}")
        lines.append(f"    Value: {_short(error.instance)}")
    if len(errors) > _MAX_LISTED:
        lines.append(f"  ... and {len(errors) - _MAX_LISTED} more")
    return ContractViolation(
        "\n".join(lines), path=first.path, rule=_rule(first), instance=first.instance
    )


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
