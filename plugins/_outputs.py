"""Custom outputs from a test: a rule body for ``/_mock/outputs`` from files,
bytes and URLs."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["guess_format", "output_rule"]

_SIGNATURES = (
    (b"\x89PNG", "png"),
    (b"\xff\xd8", "jpeg"),
    (b"GIF8", "gif"),
    (b"ID3", "mp3"),
    (b"\xff\xfb", "mp3"),
    (b"fLaC", "flac"),
    (b"OggS", "ogg"),
)


def guess_format(data: bytes, name: str = "") -> str:
    """A file's format from its first bytes (else its name's suffix)."""
    if data[4:8] == b"ftyp":
        return "mp4"
    if data[:4] == b"RIFF":
        return "webp" if data[8:12] == b"WEBP" else "wav"
    for magic, fmt in _SIGNATURES:
        if data.startswith(magic):
            return fmt
    return Path(name).suffix.lstrip(".").lower() or "txt"


def output_rule(
    model: str,
    outputs: Iterable[str | bytes | os.PathLike[str]],
    *,
    match: dict[str, Any] | None = None,
    times: int | None = None,
) -> dict[str, Any]:
    """The ``POST /_mock/outputs`` body for these outputs."""
    items: list[dict[str, Any]] = []
    for output in outputs:
        if isinstance(output, str) and output.startswith(("http://", "https://")):
            items.append({"url": output})
            continue
        if isinstance(output, bytes):
            data, name = output, ""
        else:
            path = Path(output)
            data, name = path.read_bytes(), path.name
        items.append(
            {
                "base64": base64.b64encode(data).decode("ascii"),
                "format": guess_format(data, name),
            }
        )
    body: dict[str, Any] = {"model": model, "outputs": items}
    if match:
        body["match"] = match
    if times is not None:
        body["times"] = times
    return body
