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


def _satisfiable(header: str, size: int) -> list[str] | None:
    """The satisfiable parts of a bytes range (empty: none is, a 416); None for
    a header to ignore (one that cannot be parsed, RFC 9110)."""
    if not header.lower().startswith("bytes="):
        return None
    kept: list[str] = []
    for part in header[6:].split(","):
        match = _RANGE.match("bytes=" + part.strip())
        if not match:
            return None
        start, end = match.groups()
        if not start and not end:
            return None
        if start and end and int(end) < int(start):
            return None
        if (start and int(start) < size) or (not start and int(end) > 0):
            kept.append(part.strip())
    return kept


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
        if satisfiable == []:
            return error_response(
                416,
                f"Range {range_header!r} cannot be satisfied: the file has {size} bytes",
                headers={"Content-Range": f"bytes */{size}"},
            )
        # The parts that can be served, and only those (a part past the end
        # beside a good one is dropped, RFC 9110); none: the whole file.
        ranges = "bytes=" + ",".join(satisfiable) if satisfiable else None
        return _RangedFileResponse(path, media_type=media_type, ranges=ranges)
    return FileResponse(path, media_type=media_type)


class _RangedFileResponse(FileResponse):
    """The file for the given ranges only (None: the whole file)."""

    def __init__(self, path: Path, *, media_type: str, ranges: str | None) -> None:
        super().__init__(path, media_type=media_type)
        self.ranges = ranges

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k != b"range"]
        if self.ranges is not None:
            headers.append((b"range", self.ranges.encode("latin-1")))
        await super().__call__({**scope, "headers": headers}, receive, send)
