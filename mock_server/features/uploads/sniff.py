"""What a file is, from its first bytes, when its name and content type do not say.

``client.upload(io.BytesIO(...))`` in the Python SDK sends the file name
``upload`` and no content type, and the JS SDK does the same for a path without
an extension; the SDK's own fixture shows the API accepting that. The mock then
reads the signature at the start of the bytes.

Written here rather than taken from a library (``filetype``, ``puremagic``):
the project's runtime dependencies are a fixed list, and the formats the upload
docs list need about twenty signatures.
"""

from __future__ import annotations

__all__ = ["SNIFF_BYTES", "sniff_media"]

SNIFF_BYTES = 64
"""How much of the start of a file :func:`sniff_media` needs."""

# (offset, signature, kind, content type), checked in order.
_SIGNATURES: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image", "image/png"),
    (0, b"\xff\xd8\xff", "image", "image/jpeg"),
    (0, b"GIF87a", "image", "image/gif"),
    (0, b"GIF89a", "image", "image/gif"),
    (0, b"II*\x00", "image", "image/tiff"),
    (0, b"MM\x00*", "image", "image/tiff"),
    (0, b"BM", "image", "image/bmp"),
    (0, b"FLV\x01", "video", "video/x-flv"),
    (0, b"0&\xb2u\x8ef\xcf\x11", "video", "video/x-ms-wmv"),  # ASF
    (0, b"ID3", "audio", "audio/mpeg"),
    (0, b"fLaC", "audio", "audio/flac"),
)
_RIFF = {b"WEBP": ("image", "image/webp"), b"AVI ": ("video", "video/x-msvideo"),
         b"WAVE": ("audio", "audio/wav")}  # fmt: skip


def sniff_media(head: bytes) -> tuple[str, str] | None:
    """``(kind, content type)`` of a file from its first :data:`SNIFF_BYTES` bytes.

    ``kind`` is ``image``, ``video`` or ``audio``; None when the bytes match no
    format the upload docs list.

    Example:
        >>> sniff_media(b"\\x89PNG\\r\\n\\x1a\\n...")
        ('image', 'image/png')
    """
    for offset, signature, kind, content_type in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return kind, content_type
    if head[:4] == b"RIFF" and head[8:12] in _RIFF:
        return _RIFF[head[8:12]]
    if head[4:8] == b"ftyp":  # ISO base media: MP4, MOV, M4A, 3GP
        brand = head[8:12]
        if brand == b"qt  ":
            return "video", "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio", "audio/mp4"
        if brand.startswith(b"3g"):
            return "video", "video/3gpp"
        return "video", "video/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: WebM or Matroska
        webm = b"webm" in head[:SNIFF_BYTES]
        return "video", "video/webm" if webm else "video/x-matroska"
    if head[:4] == b"OggS":
        if b"OpusHead" in head:
            return "audio", "audio/opus"
        if b"theora" in head:
            return "video", "video/ogg"
        return "audio", "audio/ogg"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # A frame sync: ADTS (AAC) has 12 sync bits and layer 00; MPEG audio
        # (MP3 without an ID3 tag) 11 sync bits and a layer.
        if head[1] & 0xF6 == 0xF0:
            return "audio", "audio/aac"
        if head[1] & 0x06:
            return "audio", "audio/mpeg"
    return None
