"""Where an image-to-video request's image comes from.

``image`` may be a ``data:`` URI (decoded at submit), the URL of a file uploaded to
this server (read from the data folder), or any other http(s) URL: fetched only
with ``--fetch-remote-images``, and then only from public addresses, within one
deadline and one byte bound (:mod:`.remote_fetch`); otherwise the clip starts
from a placeholder frame derived from the URL, so CI stays hermetic and the server
never makes requests a client chose (no server-side request forgery).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import io
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from ...contracts import UnusableImageError, probe_image
from ..errors import bad_request
from .engine import INTERNAL_ERROR, RenderFailed
from .objects import LocalFiles, ObjectStore, ObjectStoreError
from .remote_fetch import FetchFailed, FetchRefused, RemoteFetcher

__all__ = [
    "ImageIntake",
    "ImageLoader",
    "decode_data_uri",
    "placeholder_image",
]

log = logging.getLogger("wavespeed_mock.server")

UPLOAD_PATH = re.compile(r"^/uploads/([0-9a-f]{32})/([^/]{1,255})$")
_DATA_URI = re.compile(
    r"^data:(image/[A-Za-z0-9.+-]+)((?:;[A-Za-z0-9=._+-]+)*);base64,", re.I
)


def decode_data_uri(value: str, field: str = "$.image") -> bytes:
    """The bytes of a base64 ``data:image/...`` URI.

    Raises:
        ApiError: 400 naming ``field`` when the URI or its base64 is malformed.
    """
    match = _DATA_URI.match(value)
    if not match:
        raise bad_request(field, "data: URI must be data:image/<type>;base64,<data>")
    try:
        return base64.b64decode(value[match.end() :], validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(
            field, "the data: URI's base64 payload is malformed"
        ) from None


@functools.lru_cache(maxsize=256)
def placeholder_image(url: str) -> bytes:
    """A deterministic 512x512 PNG derived from ``url`` (no network)."""
    digest = hashlib.sha256(url.encode()).digest()
    import numpy as np

    y, x = np.mgrid[0:512, 0:512].astype(np.float32) / 511.0
    c0 = np.frombuffer(digest[0:3], dtype=np.uint8).astype(np.float32)
    c1 = np.frombuffer(digest[3:6], dtype=np.uint8).astype(np.float32)
    t = (x * (digest[6] / 255.0) + y * (1 - digest[6] / 255.0))[..., None]
    pixels = (c0 * (1 - t) + c1 * t).astype(np.uint8)
    # Stripes so that motion and frame-diffing code has edges to follow.
    pixels[
        (((x * 512).astype(int) // 32) + ((y * 512).astype(int) // 32)) % 2 == 0
    ] //= 2
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="PNG")
    return out.getvalue()


@dataclass(frozen=True)
class ImageIntake:
    """A ``data:`` image as it came in: decoded once, hashed once."""

    data: bytes
    digest: str
    """Hex SHA-256 of ``data``."""
    echoed: str
    """What the prediction's ``input.image`` shows instead of the whole URI."""


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a ``.<random>.part`` file beside it, so
    the name never holds half a file (a start removes leftover parts)."""
    fd, tmp_name = tempfile.mkstemp(prefix=".", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def first_image(body: Mapping[str, Any], field: str | None) -> str | None:
    """The request's input image: ``body[field]``, or its first item for a list."""
    if field is None:
        return None
    value = body.get(field)
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) and value else None


def take_data_uri(value: str, max_pixels: int, field: str = "$.image") -> ImageIntake:
    """Decode and check a ``data:`` image at submit.

    Raises:
        ApiError: 400 naming ``field`` for a malformed URI or an unusable image.
    """
    data = decode_data_uri(value, field)
    try:
        probe_image(data, max_pixels=max_pixels)
    except UnusableImageError as exc:
        raise bad_request(field, str(exc)) from None
    return ImageIntake(
        data=data,
        digest=hashlib.sha256(data).hexdigest(),
        echoed=value[: value.index(",") + 1] + f"<{len(data)} bytes>",
    )


class ImageLoader:
    """Finds the bytes of a request's image, at render time."""

    def __init__(
        self,
        *,
        data_dir: Path,
        base_url: str,
        fetcher: RemoteFetcher | None,
        max_pixels: int,
        objects: ObjectStore | None = None,
    ) -> None:
        """``fetcher`` fetches http(s) images; None (the default setting) keeps
        the server off the network: a placeholder frame stands in."""
        self.data_dir = data_dir
        self.inputs_dir = data_dir / "inputs"
        self.uploads_dir = data_dir / "uploads"
        self.objects: ObjectStore = objects if objects is not None else LocalFiles()
        """Where kept images and uploads are also kept (``--outputs``): a render
        on another machine reads them from there."""
        self.base = urlsplit(base_url)
        self.fetcher = fetcher
        self.max_pixels = max_pixels

    def rebase(self, base_url: str) -> None:
        """Recognise upload URLs under ``base_url`` (a live server learns its port late)."""
        self.base = urlsplit(base_url)

    def input_path(self, digest: str) -> Path:
        return self.inputs_dir / f"{digest}.img"

    def keep(self, intake: ImageIntake) -> None:
        """Keep a ``data:`` image on disk, so a restart can still render its task.

        Named by content, so a repeated image is written once. The render itself
        uses the bytes in memory (:attr:`RenderJob.image`).
        """
        path = self.input_path(intake.digest)
        if path.exists():
            return
        self.inputs_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(path, intake.data)
        try:
            self.objects.put(f"inputs/{path.name}", path)
        except ObjectStoreError:
            # Not in the bucket: not kept here either, or the next submit of
            # this image would find the file and never put it.
            path.unlink(missing_ok=True)
            raise

    def remove_partials(self) -> None:
        """Delete half-written inputs left by a killed run (called at start)."""
        if self.inputs_dir.is_dir():
            for leftover in self.inputs_dir.glob(".*.part"):
                leftover.unlink(missing_ok=True)

    def upload_file(self, url: str) -> Path | None:
        """The local file behind an upload URL of this server, if it is one.

        The path is not checked here: :meth:`load` reads it only through
        :func:`read_inside`.
        """
        parts = urlsplit(url)
        match = UPLOAD_PATH.match(parts.path)
        if not match or not _same_server(parts.netloc, self.base.netloc):
            return None
        return self.uploads_dir / match.group(1) / match.group(2)

    def load(self, image: str, digest: str | None) -> tuple[bytes, str]:
        """The image bytes and a word on where they came from.

        ``digest`` names a kept ``data:`` image (after a restart). Files are read
        only from inside the data folder, after resolving links; an upload must
        pass the image rule (it was probed when it came in, but a file in the
        data folder may have been put there by other means).

        Raises:
            RenderFailed: code 1402 when the image cannot be had or used.
        """
        if digest is not None:
            self._bring(self.input_path(digest))
            data = read_inside(self.inputs_dir, self.input_path(digest))
            if data is None:
                raise RenderFailed(
                    "The request's data: image is gone from the data folder", code=1402
                )
            return data, "data-uri"
        local = self.upload_file(image)
        if local is not None:
            self._bring(local)
            data = read_inside(self.uploads_dir, local)
            if data is None:
                raise RenderFailed(
                    f"Failed to download image from the provided URL: no upload at {image}",
                    code=1402,
                )
            return self._checked(data, "The uploaded image"), "upload"
        if self.fetcher is None:
            return placeholder_image(image), "placeholder"
        return self._fetch(image), "remote"

    def _bring(self, path: Path) -> None:
        """A kept image or an upload made on another machine: from the object
        store into the data folder, if it is there (``--outputs``; keys are
        paths in the data folder)."""
        if not self.objects.shared or path.is_file() or path.name in ("", ".", ".."):
            return  # (a name that is no file: read_inside refuses it next)
        try:
            self.objects.get(path.relative_to(self.data_dir).as_posix(), path)
        except ObjectStoreError as exc:
            # The store failed, not the image: the server's error, not 1402.
            raise RenderFailed(
                f"Internal error: the image could not be read from the object "
                f"store ({exc})",
                code=INTERNAL_ERROR,
            ) from None

    def _fetch(self, url: str) -> bytes:
        assert self.fetcher is not None
        try:
            data = self.fetcher.fetch(url)
            probe_image(data, max_pixels=self.max_pixels)
        except FetchRefused as exc:
            raise RenderFailed(
                f"The image URL is refused: {exc}. The mock fetches public "
                "addresses only; allow this one with --fetch-allow "
                "(WAVESPEED_MOCK_FETCH_ALLOW)",
                code=1402,
            ) from None
        except (FetchFailed, UnusableImageError) as exc:
            # One message whatever the cause, so that a task's error cannot
            # tell an open port from a closed one; the cause is logged.
            log.warning("image fetch of %s failed: %s", url[:200], exc)
            raise RenderFailed(
                "Failed to download image from the provided URL", code=1402
            ) from None
        return data

    def _checked(self, data: bytes, what: str) -> bytes:
        """``data`` if it passes the image rule, else 1402 (the render cannot start)."""
        try:
            probe_image(data, max_pixels=self.max_pixels)
        except UnusableImageError as exc:
            raise RenderFailed(f"{what} cannot be used: {exc}", code=1402) from None
        return data


def read_inside(root: Path, path: Path) -> bytes | None:
    """The bytes of ``path`` if, links resolved, it is a file inside ``root``.

    A link planted in the data folder (an upload replaced by a symlink to
    ``/etc/passwd``) is not followed out of it: None, as for a missing file.
    """
    try:
        resolved = path.resolve(strict=True)
        if not resolved.is_relative_to(root.resolve()) or not resolved.is_file():
            return None
        return resolved.read_bytes()
    except (OSError, RuntimeError):  # missing, unreadable, or a link loop
        return None


def _same_server(netloc: str, ours: str) -> bool:
    if netloc == ours:
        return True
    host = netloc.rsplit(":", 1)[0].strip("[]")
    our_port = ours.rsplit(":", 1)[-1] if ":" in ours else ""
    port = netloc.rsplit(":", 1)[-1] if ":" in netloc else ""
    return host in ("127.0.0.1", "localhost", "::1") and port == our_port
