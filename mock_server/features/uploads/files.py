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

What a file is comes from its name or content type; when neither says (the
Python SDK's ``upload(io.BytesIO(...))`` sends the name ``upload`` and no type),
from its first bytes (:mod:`.sniff`). An image must pass the contract's image
rule (``contracts.probe_image``: its formats, the pixel limit) before it is kept,
so an upload that is accepted can be rendered.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ....contracts import UnusableImageError, probe_image
from ....contracts.errors import WavespeedMockError
from ...core.objects import LocalFiles, ObjectStore, ObjectStoreError
from ...core.store import Store
from .sniff import SNIFF_BYTES, sniff_media

log = logging.getLogger("wavespeed_mock.server")

__all__ = [
    "MEDIA_EXTENSIONS",
    "UploadRefused",
    "UploadStore",
    "media_type_of",
    "names_nothing",
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
GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
"""Content types that say nothing about what a file is."""
_TICKET = "upload_ticket:"
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


def names_nothing(filename: str, content_type: str | None = None) -> bool:
    """Neither the name (no extension) nor the content type says what the file is."""
    declared = (content_type or "").split(";")[0].strip().lower()
    return "." not in filename and declared in GENERIC_TYPES


class UploadRefused(WavespeedMockError, ValueError):
    """An uploaded file the API would not take (its format, or an unusable image)."""


class UploadStore:
    """Upload tickets (in the store's key-value table) and uploaded files on disk."""

    def __init__(
        self,
        *,
        data_dir: Path,
        store: Store,
        max_bytes: int,
        max_image_pixels: int,
        objects: ObjectStore | None = None,
    ) -> None:
        self.dir = data_dir / "uploads"
        self.objects: ObjectStore = objects if objects is not None else LocalFiles()
        """Where uploads are also kept (``--outputs``): every machine serves them."""
        self.partial_dir = self.dir / ".partial"
        self.store = store
        self.max_bytes = max_bytes
        self.max_image_pixels = max_image_pixels

    def create_ticket(
        self, filename: str, size: int, content_type: str, kind: str | None = None
    ) -> str:
        upload_id = uuid.uuid4().hex
        self._save(
            upload_id,
            {
                "filename": filename,
                "size": size,
                "content_type": content_type,
                "type": kind,
                "created_at": time.time(),
            },
        )
        return upload_id

    def ticket(self, upload_id: str) -> dict[str, Any] | None:
        """What is known of an upload: ``filename``, ``size``, ``content_type``,
        ``type`` (None until sniffed), ``created_at`` (Unix time)."""
        if not UPLOAD_ID.match(upload_id):
            return None
        raw = self.store.get_value(_TICKET + upload_id)
        return None if raw is None else dict(json.loads(raw))

    def _save(self, upload_id: str, ticket: dict[str, Any]) -> None:
        self.store.set_value(_TICKET + upload_id, json.dumps(ticket))

    def path_of(self, upload_id: str, filename: str) -> Path:
        return self.dir / upload_id / filename

    def temp_file(self) -> Path:
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        return self.partial_dir / f"{uuid.uuid4().hex}.part"

    def inspect(self, temp: Path, kind: str | None) -> tuple[str, str | None]:
        """What the file at ``temp`` is: its kind, and its sniffed content type.

        ``kind`` is what the name or content type said (None: nothing); the
        content type is None unless it was sniffed. Blocking: call it off the
        event loop.

        Raises:
            UploadRefused: the bytes are no format the API takes, or an image that
                breaks the image rule.
        """
        sniffed: str | None = None
        if kind is None:
            with temp.open("rb") as f:
                head = f.read(SNIFF_BYTES)
            found = sniff_media(head)
            if found is None:
                raise UploadRefused(
                    "neither the file name nor the content type says what the file "
                    f"is, and its first bytes ({head[:8]!r}) are no image, video or "
                    "audio format the API takes; send a name with an extension"
                )
            kind, sniffed = found
        if kind == "image":
            try:
                probe_image(temp.read_bytes(), max_pixels=self.max_image_pixels)
            except UnusableImageError as exc:
                raise UploadRefused(f"the image cannot be used: {exc}") from None
        return kind, sniffed

    def commit(
        self,
        temp: Path,
        upload_id: str,
        filename: str,
        *,
        kind: str,
        content_type: str,
        size: int,
    ) -> Path:
        """Move a finished temp file into place (atomic: same file system) and record it."""
        final = self.path_of(upload_id, filename)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp.replace(final)
        try:
            self.objects.put(f"uploads/{upload_id}/{filename}", final)
        except ObjectStoreError:
            final.unlink(missing_ok=True)  # not kept anywhere: not kept at all
            raise
        ticket = self.ticket(upload_id) or {"created_at": time.time()}
        ticket.update(
            filename=filename, size=size, content_type=content_type, type=kind
        )
        self._save(upload_id, ticket)
        return final

    def bring(self, upload_id: str, filename: str) -> None:
        """An upload made on another machine: from the object store into the
        data folder, if it is kept there (``--outputs``). Blocking."""
        if not self.objects.shared:
            return
        path = self.path_of(upload_id, filename)
        ticket = self.ticket(upload_id)
        if (
            ticket is not None
            and ticket.get("filename") == filename
            and not path.is_file()
        ):
            self.objects.get(f"uploads/{upload_id}/{filename}", path)

    def content_type(self, upload_id: str, filename: str) -> str | None:
        """The recorded content type of an upload, if it is recorded."""
        ticket = self.ticket(upload_id)
        if ticket is None or ticket.get("filename") != filename:
            return None
        value = ticket.get("content_type")
        return str(value) if value else None

    def expire(self, max_age_s: float) -> int:
        """Delete uploads and unused tickets older than ``max_age_s`` (real time);
        how many. Blocking."""
        cutoff = time.time() - max_age_s
        recorded = dict(self.store.values(_TICKET))
        old_keys = []
        for key, raw in recorded.items():
            upload_id = key[len(_TICKET) :]
            created = json.loads(raw).get("created_at") or _mtime(self.dir / upload_id)
            if created < cutoff:
                old_keys.append(key)
        removed = 0
        for key in old_keys:
            removed += self._remove_folder(key[len(_TICKET) :]) or 1
        self._forget_objects((key[len(_TICKET) :], recorded[key]) for key in old_keys)
        if old_keys:
            self.store.delete_values(old_keys)
        if self.dir.is_dir():
            for folder in self.dir.iterdir():
                # An upload of an older version has no record: its folder's age.
                if (
                    UPLOAD_ID.match(folder.name)
                    and _TICKET + folder.name not in recorded
                    and _mtime(folder) < cutoff
                ):
                    removed += self._remove_folder(folder.name)
            for partial in self.partial_dir.glob("*.part"):
                if _mtime(partial) < cutoff:  # left by a killed run
                    partial.unlink(missing_ok=True)
        return removed

    def clear(self) -> int:
        """Delete every upload and ticket (a reset); how many uploads there were."""
        tickets = list(self.store.values(_TICKET))
        keys = [key for key, _ in tickets]
        if keys:
            self.store.delete_values(keys)
        self._forget_objects((key[len(_TICKET) :], raw) for key, raw in tickets)
        removed = 0
        if self.dir.is_dir():
            for folder in self.dir.iterdir():
                if UPLOAD_ID.match(folder.name):
                    removed += self._remove_folder(folder.name)
        return max(removed, len(keys))

    def _forget_objects(self, tickets: Iterable[tuple[str, str]]) -> None:
        """Delete these uploads (id, ticket JSON) from the object store."""
        if not self.objects.shared:
            return
        keys = [
            f"uploads/{upload_id}/{json.loads(raw).get('filename')}"
            for upload_id, raw in tickets
        ]
        try:
            self.objects.delete(keys)
        except ObjectStoreError as exc:
            log.warning("expired uploads stay in the object store: %s", exc)

    def _remove_folder(self, upload_id: str) -> int:
        folder = self.dir / upload_id
        if not folder.is_dir() or folder.is_symlink():
            return 0
        shutil.rmtree(folder, ignore_errors=True)
        return 1


def _mtime(path: Path) -> float:
    with contextlib.suppress(OSError):
        return path.stat().st_mtime
    return 0.0
