"""Media uploads: the SDK's ticket + PUT flow and the binary upload."""

from __future__ import annotations

from .files import (
    MEDIA_EXTENSIONS,
    UploadRefused,
    UploadStore,
    media_type_of,
    names_nothing,
    safe_filename,
)
from .routes import UploadHandlers, upload_routes
from .sniff import sniff_media

__all__ = [
    "MEDIA_EXTENSIONS",
    "UploadHandlers",
    "UploadRefused",
    "UploadStore",
    "media_type_of",
    "names_nothing",
    "safe_filename",
    "sniff_media",
    "upload_routes",
]
