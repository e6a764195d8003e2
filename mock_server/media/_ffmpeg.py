"""The bundled ffmpeg binary (imageio-ffmpeg) and its version, looked up once."""

from __future__ import annotations

import subprocess
from functools import cache

from .errors import EncoderError

__all__ = ["ffmpeg_exe", "ffmpeg_version"]


@cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary that imageio-ffmpeg bundles (or finds)."""
    import imageio_ffmpeg

    exe: str = imageio_ffmpeg.get_ffmpeg_exe()
    return exe


@cache
def ffmpeg_version() -> str:
    """The first line of ``ffmpeg -version``; part of every cache key."""
    try:
        done = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-version"],
            capture_output=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise EncoderError(f"Cannot run ffmpeg at {ffmpeg_exe()!r}: {exc}") from exc
    return done.stdout.decode("utf-8", "replace").splitlines()[0].strip()
