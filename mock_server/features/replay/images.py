"""The bytes of a submit's image, so a replay can match an image by its content.

An uploaded image's URL differs on every run (each upload gets a new id), so a
recorded submit keeps its image's SHA-256 and a replayed one is compared by the
digest of its own image: a ``data:`` URI decoded, or an upload to this mock read
from its data folder. Nothing is fetched from the network here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from ...core.images import ImageLoader, decode_data_uri, read_inside
from ...errors import ApiError

__all__ = ["data_uri_bytes", "image_digest", "local_images"]


def data_uri_bytes(source: str) -> bytes | None:
    """The bytes of a ``data:`` URI; None for anything else or a broken one."""
    try:
        return decode_data_uri(source)
    except (ApiError, ValueError):
        return None


def local_images(loader: ImageLoader) -> Callable[[str], bytes | None]:
    """A reader of the images this server holds, for the player."""

    def read(source: str) -> bytes | None:
        if source[:5].lower() == "data:":
            return data_uri_bytes(source)
        path = loader.upload_file(source)
        return read_inside(loader.uploads_dir, path) if path is not None else None

    return read


def image_digest(read: Callable[[str], bytes | None], source: str) -> str | None:
    data = read(source)
    return hashlib.sha256(data).hexdigest() if data is not None else None
