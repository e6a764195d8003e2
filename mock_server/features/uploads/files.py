"""Media upload: the SDK 2.x ticket + PUT flow and the documented binary upload.

1. ``POST /api/v3/media/uploads`` ``{filename, size, content_type?}`` answers a
   ticket: ``download_url`` and an ``upload`` instruction ``{method: "PUT", url,
   headers}`` [SDK-observed: PY 2.0.5, JS 0.3.2, Java].
2. ``PUT <upload.url>`` with the raw bytes; no bearer key, like a pre-signed
   storage URL [SDK-observed: the SDK tests assert Authorization is absent].
3. ``GET <download_url>`` serves the file; use it as a model's ``image``.

``POST /api/v3/media/upload/binary`` (multipart field ``file``) does it in one
request [documented: D-UP].

Both URLs are ``<base>/uploads/<32-hex id>/<filename>`` and the file lives at
``data_dir/uploads/<id>/<filename>``, where the image loader finds it. File names
are reduced to a safe basename and files are written atomically (a temporary
file, then a rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import mimetypes
import re
import shutil
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message

from ....contracts import iter_errors
from ...errors import ApiError
from ...http.auth import require_api_key
from ...http.bodies import read_json_body
from ...http.files import serve_file
from ...http.responses import envelope

if TYPE_CHECKING:
    from ...core.service import MockService
    from ...core.store import PredictionStore

__all__ = [
    "MEDIA_EXTENSIONS",
    "UploadStore",
    "install",
    "media_type_of",
    "safe_filename",
]

UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
# Formats the docs list per type [documented: D-UP]. WebM is listed for video and
# audio; the extension alone says video, a declared audio/* content type says audio.
MEDIA_EXTENSIONS: dict[str, frozenset[str]] = {
    "image": frozenset({"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"}),
    "video": frozenset(
        {"mp4", "avi", "mov", "wmv", "flv", "webm", "mkv", "3gp", "ogv"}
    ),
    "audio": frozenset({"mp3", "wav", "ogg", "aac", "flac", "webm", "m4a", "opus"}),
}
MAX_NAME_CHARS = 150
# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD = 64 * 1024
TICKET_BODY_LIMIT = 64 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str) -> str:
    """The basename of ``name`` in ``[A-Za-z0-9._-]``, never empty, ``.`` or ``..``.

    Example:
        >>> safe_filename("../../etc/pass wd.png")
        'pass_wd.png'
    """
    base = re.split(r"[\\/]", name)[-1]
    cleaned = _UNSAFE.sub("_", base).lstrip(".")
    if len(cleaned) > MAX_NAME_CHARS:
        stem, dot, ext = cleaned.rpartition(".")
        ext = ext[:16] if dot else ""
        cleaned = (stem if dot else cleaned)[: MAX_NAME_CHARS - len(ext) - 1] + (
            "." + ext if ext else ""
        )
    return cleaned or "upload"


def media_type_of(filename: str, content_type: str | None = None) -> str | None:
    """``image``, ``video`` or ``audio`` for a file name and content type, else None."""
    declared = (content_type or "").split(";")[0].strip().lower()
    major = declared.partition("/")[0]
    ext = filename.rpartition(".")[2].lower() if "." in filename else ""
    if major == "audio" and ext in MEDIA_EXTENSIONS["audio"]:
        return "audio"
    for kind, extensions in MEDIA_EXTENSIONS.items():
        if ext in extensions:
            return kind
    return major if major in MEDIA_EXTENSIONS else None


def _unsupported(filename: str, content_type: str | None) -> ApiError:
    listed = "; ".join(
        f"{k}: {', '.join(sorted(v))}" for k, v in MEDIA_EXTENSIONS.items()
    )
    return ApiError(
        400,
        f"Invalid file or format not supported: {filename!r} "
        f"(content type {content_type!r}). Supported formats: {listed}",
    )


class UploadStore:
    """Upload tickets (in the store's key-value table) and uploaded files on disk."""

    def __init__(
        self, *, data_dir: Path, store: PredictionStore, max_bytes: int
    ) -> None:
        self.dir = data_dir / "uploads"
        self.partial_dir = self.dir / ".partial"
        self.store = store
        self.max_bytes = max_bytes

    def create_ticket(self, filename: str, size: int, content_type: str) -> str:
        upload_id = uuid.uuid4().hex
        ticket = {"filename": filename, "size": size, "content_type": content_type}
        self.store.set_value(f"upload_ticket:{upload_id}", json.dumps(ticket))
        return upload_id

    def ticket(self, upload_id: str) -> dict[str, Any] | None:
        if not UPLOAD_ID.match(upload_id):
            return None
        raw = self.store.get_value(f"upload_ticket:{upload_id}")
        return None if raw is None else dict(json.loads(raw))

    def path_of(self, upload_id: str, filename: str) -> Path:
        return self.dir / upload_id / filename

    def temp_file(self) -> Path:
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        return self.partial_dir / f"{uuid.uuid4().hex}.part"

    def commit(self, temp: Path, upload_id: str, filename: str) -> Path:
        """Move a finished temp file into place (atomic: same file system)."""
        final = self.path_of(upload_id, filename)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp.replace(final)
        return final


def _too_large(size: int, limit: int, what: str = "File") -> ApiError:
    return ApiError(
        413,
        f"File too large: {what} of {size:,} bytes is over the {limit:,}-byte limit",
    )


def _problems_message(schema: str, body: Any) -> str | None:
    problems = list(iter_errors(schema, body))
    if not problems:
        return None
    return "Invalid request body: " + "; ".join(
        f"{e.path}: {e.message}" for e in problems[:5]
    )


def install(service: MockService) -> list[BaseRoute]:
    """Register the upload routes; sets ``service.uploads`` (:class:`UploadStore`).

    Reads ``settings.max_upload_bytes`` (200 MB by default; 413 beyond it).
    """
    settings = service.settings
    limit = int(settings.max_upload_bytes)
    uploads = UploadStore(
        data_dir=service.data_dir, store=service.store, max_bytes=limit
    )
    service.uploads = uploads
    accepted = frozenset(settings.api_keys)

    def url_of(upload_id: str, filename: str) -> str:
        # Read at request time: a live server learns its port after the service exists.
        return f"{service.base_url}/uploads/{upload_id}/{filename}"

    async def create_ticket(request: Request) -> Response:
        require_api_key(request, accepted)
        body = await read_json_body(request, TICKET_BODY_LIMIT)
        problem = _problems_message("upload-ticket.request.json", body)
        if problem:
            raise ApiError(400, problem)
        size = int(body["size"])
        if size > limit:
            raise _too_large(size, limit, "a declared size")
        declared = body.get("content_type")
        filename = safe_filename(str(body["filename"]))
        kind = media_type_of(filename, declared)
        if kind is None:
            raise _unsupported(str(body["filename"]), declared)
        content_type = (
            declared or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        )
        upload_id = uploads.create_ticket(filename, size, content_type)
        url = url_of(upload_id, filename)
        return envelope(
            {
                "type": kind,
                "download_url": url,
                "filename": filename,
                "size": size,
                "upload": {
                    "method": "PUT",
                    "url": url,
                    "headers": {"Content-Type": content_type},
                },
            }
        )

    async def put_file(request: Request) -> Response:
        upload_id = request.path_params["upload_id"]
        filename = request.path_params["filename"]
        ticket = uploads.ticket(upload_id)
        if ticket is None or ticket["filename"] != filename:
            raise ApiError(
                404,
                f"No upload ticket for /uploads/{upload_id}/{filename}; "
                "ask for one with POST /api/v3/media/uploads",
            )
        # The bytes may not exceed the declared size (as a pre-signed URL would
        # refuse) nor the server's limit. [inferred]
        cap = min(limit, int(ticket["size"]))
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise _too_large(int(declared), cap, "a PUT")
        temp = uploads.temp_file()
        size = 0
        try:
            with temp.open("wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > cap:
                        raise _too_large(size, cap, "a PUT")
                    out.write(chunk)
            uploads.commit(temp, upload_id, filename)
        finally:
            temp.unlink(missing_ok=True)
        return envelope({"download_url": url_of(upload_id, filename), "size": size})

    async def get_file(request: Request) -> Response:
        upload_id = request.path_params["upload_id"]
        filename = request.path_params["filename"]
        if not UPLOAD_ID.match(upload_id):
            raise ApiError(404, f"File {filename!r} not found")
        media = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return serve_file(
            uploads.dir, f"{upload_id}/{filename}", media, request.headers.get("range")
        )

    async def upload_file(request: Request) -> Response:
        if request.method == "PUT":
            return await put_file(request)
        return await get_file(request)

    async def upload_binary(request: Request) -> Response:
        require_api_key(request, accepted)
        cap = limit + MULTIPART_OVERHEAD
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise _too_large(int(declared) - MULTIPART_OVERHEAD, limit)
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await request.receive()
            received += len(message.get("body", b""))
            if received > cap:
                raise _too_large(received, limit)
            return message

        limited = Request(request.scope, bounded)
        async with limited.form(max_files=1, max_fields=100) as form:
            item = form.get("file")
            if not isinstance(item, UploadFile):
                fields = ", ".join(repr(k) for k in form) or "none"
                raise ApiError(
                    400,
                    "Invalid request body: send multipart/form-data with the file in "
                    f"the field 'file' (fields received: {fields})",
                )
            original = item.filename or "upload"
            filename = safe_filename(original)
            kind = media_type_of(filename, item.content_type)
            if kind is None:
                raise _unsupported(original, item.content_type)
            upload_id = uuid.uuid4().hex
            temp = uploads.temp_file()
            try:
                size = await _copy(item, temp, limit)
                uploads.commit(temp, upload_id, filename)
            finally:
                temp.unlink(missing_ok=True)
        return envelope(
            {
                "type": kind,
                "download_url": url_of(upload_id, filename),
                "filename": filename,
                "size": size,
            }
        )

    return [
        Route("/api/v3/media/uploads", create_ticket, methods=["POST"]),
        Route("/api/v3/media/upload/binary", upload_binary, methods=["POST"]),
        Route(
            "/uploads/{upload_id}/{filename}",
            upload_file,
            methods=["GET", "HEAD", "PUT"],
        ),
    ]


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
