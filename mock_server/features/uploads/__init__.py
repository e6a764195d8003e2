"""Media uploads: the SDK's ticket + PUT flow and the binary upload."""

from __future__ import annotations

from .files import MEDIA_EXTENSIONS, UploadStore, media_type_of, safe_filename
from .routes import upload_routes

__all__ = [
    "MEDIA_EXTENSIONS",
    "UploadStore",
    "media_type_of",
    "safe_filename",
    "upload_routes",
]
