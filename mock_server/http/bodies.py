"""Reading request bodies: bounded in size, answered in the envelope when bad.

Every route that takes a body reads it through here, so the size limit and the
400/413 answers are the same everywhere.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from ..errors import ApiError

__all__ = ["parse_json", "read_body", "read_json_body"]


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
        raise ApiError(
            400, "Invalid request body: the body is empty; send a JSON object"
        )
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"Invalid request body: not valid JSON ({exc})") from None
