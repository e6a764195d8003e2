"""Answers in the API's envelope."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

__all__ = ["encode_envelope", "envelope", "error_response", "json_response"]

# One encoder for every answer: json.dumps builds a new one per call when given
# options, a measurable share of a poll's cost.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _json_bytes(body: Any) -> bytes:
    # A lone surrogate (never stored: bodies refuse them) still must not turn an
    # answer into a 500: it is written as its JSON escape.
    return _encode(body).encode("utf-8", "backslashreplace")


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        _json_bytes(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def encode_envelope(data: Any) -> bytes:
    """The bytes of ``{"code": 200, "message": "success", "data": ...}``."""
    return _json_bytes({"code": 200, "message": "success", "data": data})


def envelope(data: Any) -> Response:
    """``{"code": 200, "message": "success", "data": ...}`` with HTTP 200."""
    return Response(encode_envelope(data), media_type="application/json")


def error_response(
    status: int,
    message: str,
    *,
    error_code: str | None = None,
    headers: dict[str, str] | None = None,
    error: str | None = None,
) -> Response:
    body: dict[str, Any] = {"code": status, "message": message}
    if error_code is not None:
        body["error_code"] = error_code
    if error is not None:
        body["error"] = error
    return json_response(body, status, headers)
