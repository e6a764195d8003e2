"""Serving generated clips and uploads, only from inside the data folder.

Range requests are answered 206 by Starlette's FileResponse; an unsatisfiable
range gets 416 in the API's envelope, with ``Content-Range: bytes */size``.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.responses import FileResponse, Response
from starlette.types import Receive, Scope, Send

from ..errors import ApiError
from .responses import error_response

__all__ = ["serve_file"]

_RANGE = re.compile(r"^bytes=\s*(\d*)-(\d*)\s*$")


def _satisfiable(header: str, size: int) -> bool | None:
    """True/False for a parseable bytes range; None for one to ignore (RFC 9110)."""
    if not header.lower().startswith("bytes="):
        return None
    parts = header[6:].split(",")
    seen = False
    for part in parts:
        match = _RANGE.match("bytes=" + part.strip())
        if not match:
            return None
        start, end = match.groups()
        if not start and not end:
            return None
        if start and end and int(end) < int(start):
            return None
        seen = True
        if (start and int(start) < size) or (not start and int(end) > 0):
            return True
    return False if seen else None


def serve_file(
    root: Path, relative: str, media_type: str, range_header: str | None
) -> Response:
    """A file under ``root``; never anything outside it, whatever ``relative`` says."""
    base = root.resolve()
    try:
        path = (base / relative).resolve()
        found = path.is_relative_to(base) and path.is_file()
    except (ValueError, OSError):  # NUL in the name, a name too long
        found = False
    if not found:
        raise ApiError(404, f"File {relative!r} not found")
    size = path.stat().st_size
    if range_header:
        satisfiable = _satisfiable(range_header, size)
        if satisfiable is False:
            return error_response(
                416,
                f"Range {range_header!r} cannot be satisfied: the file has {size} bytes",
                headers={"Content-Range": f"bytes */{size}"},
            )
        if satisfiable is None:
            return _WholeFileResponse(path, media_type=media_type)
    return FileResponse(path, media_type=media_type)


class _WholeFileResponse(FileResponse):
    """The whole file, ignoring a Range header that cannot be parsed (RFC 9110)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k != b"range"]
        await super().__call__({**scope, "headers": headers}, receive, send)
