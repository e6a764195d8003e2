"""The upload routes: the SDK 2.x ticket + PUT flow and the documented multipart ones.

See :mod:`.files` for what the flow is; these handlers only read requests
(bounded), ask the :class:`UploadStore`, and answer.
"""

from __future__ import annotations

import asyncio
import functools
import mimetypes
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message

from ....contracts import upload_limits
from ...core.objects import ObjectStoreError
from ...core.service import MockService
from ...errors import ApiError, bad_request
from ...http.auth import Authenticator
from ...http.bodies import read_json_object
from ...http.files import serve_file
from ...http.responses import envelope
from .files import (
    GENERIC_TYPES,
    MEDIA_EXTENSIONS,
    UPLOAD_ID,
    UploadRefused,
    UploadStore,
    media_type_of,
    names_nothing,
    safe_filename,
)

__all__ = ["UploadHandlers", "upload_routes"]

# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


def _unsupported(filename: str, content_type: str | None) -> ApiError:
    listed = "; ".join(
        f"{k}: {', '.join(sorted(v))}" for k, v in MEDIA_EXTENSIONS.items()
    )
    return ApiError(
        400,
        f"Invalid file or format not supported: {filename!r} "
        f"(content type {content_type!r}). Supported formats: {listed}",
    )


def _refused(filename: str, exc: UploadRefused) -> ApiError:
    return ApiError(400, f"Invalid file or format not supported: {filename!r}: {exc}")


def _content_type(declared: str | None, sniffed: str | None, filename: str) -> str:
    """What the file is served as: sniffed, else declared, else by its name."""
    given = (declared or "").strip()
    if sniffed:
        return sniffed
    if given.split(";")[0].strip().lower() not in GENERIC_TYPES:
        return given
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


async def _keep(
    uploads: UploadStore,
    temp: Path,
    upload_id: str,
    filename: str,
    *,
    said: str | None,
    declared: str | None,
    size: int,
    shown: str | None = None,
    kind_limits: Mapping[str, int] | None = None,
) -> str:
    """Inspect the finished temp file (off the loop) and move it into place; its kind.

    ``said`` is the kind the name or content type gave (None: sniff the bytes).

    Raises:
        ApiError: 400 when the bytes are no format the API takes.
    """
    import anyio.to_thread

    try:
        kind, sniffed = await anyio.to_thread.run_sync(uploads.inspect, temp, said)
    except UploadRefused as exc:
        raise _refused(shown or filename, exc) from None
    if kind_limits is not None:
        _check_kind_size(kind, size, kind_limits)
    try:  # off the loop: with --outputs it puts the file in the object store
        await anyio.to_thread.run_sync(
            functools.partial(
                uploads.commit,
                temp,
                upload_id,
                filename,
                kind=kind,
                content_type=_content_type(declared, sniffed, filename),
                size=size,
            )
        )
    except ObjectStoreError as exc:
        raise ApiError(
            503, f"Service unavailable: the file could not be kept ({exc})"
        ) from None
    return kind


def _too_large(size: int, limit: int, what: str = "File") -> ApiError:
    return ApiError(
        413,
        f"File too large: {what} of {size:,} bytes is over the {limit:,}-byte limit",
    )


def _check_kind_size(kind: str, size: int, kind_limits: Mapping[str, int]) -> None:
    cap = kind_limits.get(kind)
    if cap is not None and size > cap:
        raise _too_large(size, cap, f"the {kind}")


class UploadHandlers:
    """The upload handlers, bound to the upload store and the service; files
    beyond ``uploads.max_bytes`` are answered 413. The API's take the checked API
    key (``Authenticator.routes`` supplies it); a test can call one without a
    server."""

    def __init__(self, uploads: UploadStore, service: MockService) -> None:
        self.uploads = uploads
        self.service = service
        self.limit = uploads.max_bytes

    def url_of(self, upload_id: str, filename: str) -> str:
        # Read at request time: a live server learns its port after the service exists.
        return f"{self.service.base_url}/uploads/{upload_id}/{filename}"

    async def create_ticket(self, request: Request, api_key: str) -> Response:
        body = await read_json_object(request, "upload-ticket.request.json")
        size = int(body["size"])
        if size > self.limit:
            raise _too_large(size, self.limit, "a declared size")
        declared = body.get("content_type")
        filename = safe_filename(str(body["filename"]))
        kind = media_type_of(filename, declared)
        if kind is None and not names_nothing(filename, declared):
            raise _unsupported(str(body["filename"]), declared)
        # Neither name nor type says what it is: the PUT's bytes will. [inferred]
        content_type = _content_type(declared, None, filename)
        upload_id = self.uploads.create_ticket(filename, size, content_type, kind)
        url = self.url_of(upload_id, filename)
        answer: dict[str, object] = {
            "download_url": url,
            "filename": filename,
            "size": size,
            "upload": {
                "method": "PUT",
                "url": url,
                "headers": {"Content-Type": content_type},
            },
        }
        if kind is not None:  # unknown until the bytes arrive [inferred]
            answer = {"type": kind, **answer}
        return envelope(answer)

    async def put_file(self, request: Request) -> Response:
        upload_id = request.path_params["upload_id"]
        filename = request.path_params["filename"]
        ticket = self.uploads.ticket(upload_id)
        if ticket is None or ticket["filename"] != filename:
            raise ApiError(
                404,
                f"No upload ticket for /uploads/{upload_id}/{filename}; "
                "ask for one with POST /api/v3/media/uploads",
            )
        # The bytes may not exceed the declared size (as a pre-signed URL would
        # refuse) nor the server's limit. [inferred]
        cap = min(self.limit, int(ticket["size"]))
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise _too_large(int(declared), cap, "a PUT")
        temp = self.uploads.temp_file()
        size = 0
        try:
            with temp.open("wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > cap:
                        raise _too_large(size, cap, "a PUT")
                    out.write(chunk)
            said = ticket.get("type") or media_type_of(
                filename, ticket.get("content_type")
            )
            await _keep(self.uploads, temp, upload_id, filename, said=said,
                        declared=ticket.get("content_type"), size=size)  # fmt: skip
        finally:
            temp.unlink(missing_ok=True)
        return envelope(
            {"download_url": self.url_of(upload_id, filename), "size": size}
        )

    async def get_file(self, request: Request) -> Response:
        upload_id = request.path_params["upload_id"]
        filename = request.path_params["filename"]
        if not UPLOAD_ID.match(upload_id):
            raise ApiError(404, f"File {filename!r} not found")
        media = self.uploads.content_type(upload_id, filename) or _content_type(
            None, None, filename
        )
        try:  # made through another machine: from the object store (--outputs)
            await asyncio.to_thread(self.uploads.bring, upload_id, filename)
        except ObjectStoreError as exc:
            raise ApiError(
                503, f"Service unavailable: the file could not be read ({exc})"
            ) from None
        return serve_file(
            self.uploads.dir,
            f"{upload_id}/{filename}",
            media,
            request.headers.get("range"),
        )

    async def upload_file(self, request: Request) -> Response:
        if request.method == "PUT":
            return await self.put_file(request)
        return await self.get_file(request)

    async def receive_multipart(
        self, request: Request, kind_limits: Mapping[str, int] | None = None
    ) -> tuple[str, str, str, int]:
        """Store the multipart field ``file``: (upload id, file name, kind, size).

        ``kind_limits`` bounds the file by its kind too (``/api/v3/upload``).
        """
        cap = self.limit + MULTIPART_OVERHEAD
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise _too_large(int(declared) - MULTIPART_OVERHEAD, self.limit)
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await request.receive()
            received += len(message.get("body", b""))
            if received > cap:
                raise _too_large(received, self.limit)
            return message

        limited = Request(request.scope, bounded)
        async with limited.form(max_files=1, max_fields=100) as form:
            item = form.get("file")
            if not isinstance(item, UploadFile):
                fields = ", ".join(repr(k) for k in form) or "none"
                raise bad_request(
                    "$.file",
                    "send multipart/form-data with the file in the field 'file' "
                    f"(fields received: {fields})",
                )
            original = item.filename or "upload"
            filename = safe_filename(original)
            said = media_type_of(filename, item.content_type)
            if said is None and not names_nothing(filename, item.content_type):
                raise _unsupported(original, item.content_type)
            upload_id = uuid.uuid4().hex
            temp = self.uploads.temp_file()
            try:
                size = await _copy(item, temp, self.limit)
                kind = await _keep(self.uploads, temp, upload_id, filename, said=said,
                                   declared=item.content_type, size=size,
                                   shown=original, kind_limits=kind_limits)  # fmt: skip
            finally:
                temp.unlink(missing_ok=True)
        return upload_id, filename, kind, size

    async def upload_binary(self, request: Request, api_key: str) -> Response:
        upload_id, filename, kind, size = await self.receive_multipart(request)
        return envelope(
            {
                "type": kind,
                "download_url": self.url_of(upload_id, filename),
                "filename": filename,
                "size": size,
            }
        )

    async def upload(self, request: Request, api_key: str) -> Response:
        upload_id, filename, _, _ = await self.receive_multipart(
            request, upload_limits()
        )
        return envelope({"url": self.url_of(upload_id, filename)})

    def routes(self, auth: Authenticator) -> list[BaseRoute]:
        """The API's upload routes (authenticated by ``auth``) and the file URLs."""
        return [
            *auth.routes(
                [
                    ("/api/v3/media/uploads", self.create_ticket, "POST"),
                    ("/api/v3/media/upload/binary", self.upload_binary, "POST"),
                    ("/api/v3/upload", self.upload, "POST"),
                ]
            ),
            Route(
                "/uploads/{upload_id}/{filename}",
                self.upload_file,
                methods=["GET", "HEAD", "PUT"],
            ),
        ]


def upload_routes(
    uploads: UploadStore, service: MockService, auth: Authenticator
) -> list[BaseRoute]:
    """The upload routes; files beyond ``uploads.max_bytes`` are answered 413."""
    return UploadHandlers(uploads, service).routes(auth)


async def _copy(item: UploadFile, temp: Path, limit: int) -> int:
    """Copy a spooled multipart file to ``temp`` off the event loop; its size."""
    import anyio.to_thread

    def copy(source: IO[bytes]) -> int:
        source.seek(0)
        with temp.open("wb") as out:
            shutil.copyfileobj(source, out, 1024 * 1024)
            return out.tell()

    size = await anyio.to_thread.run_sync(copy, item.file)
    if size > limit:
        raise _too_large(size, limit)
    return size
