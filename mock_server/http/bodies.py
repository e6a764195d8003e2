"""Reading request bodies: bounded in size, answered in the envelope when bad.

Every route that takes a body reads it through here, so the size limit and the
400/413 answers are the same everywhere.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from ...contracts import body_limits, iter_errors
from ..errors import ApiError, bad_request, bad_request_message

__all__ = [
    "parse_json",
    "read_body",
    "read_json_body",
    "read_json_object",
]


async def read_json_body(request: Request, limit: int) -> Any:
    """The request's JSON body, read no further than ``limit`` bytes.

    Raises:
        ApiError: 413 past the limit, 400 for a body that is not JSON.
    """
    return parse_json(await read_body(request, limit))


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, read no further than ``limit`` bytes (413 beyond)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(
            413,
            f"Request body of {int(declared):,} bytes is over the {limit:,}-byte limit",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"Request body is over the {limit:,}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """``raw`` as JSON (400 in the envelope for an empty or broken body)."""
    if not raw.strip():
        raise bad_request("$", "the body is empty; send a JSON object")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request("$", f"not valid JSON ({exc})") from None


async def read_json_object(
    request: Request, schema: str | None = None, *, optional: bool = False
) -> dict[str, Any]:
    """A small JSON object body, checked against the contract's ``schema``.

    Bounded by the contract's JSON body limit; ``optional`` makes an empty
    body read as ``{}``.

    Raises:
        ApiError: 413 past the limit, 400 naming each field that breaks the schema.
    """
    if optional:
        length = request.headers.get("content-length")
        if length == "0" or (
            length is None and "transfer-encoding" not in request.headers
        ):
            return {}
    body = await read_json_body(request, body_limits().json_bytes)
    if not isinstance(body, dict):
        raise bad_request("$", f"expected a JSON object, got {body!r:.60}")
    if schema is not None:
        problems = list(iter_errors(schema, body))
        if problems:
            raise ApiError(400, bad_request_message(problems))
    return body
