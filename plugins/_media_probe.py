"""Probing a downloaded clip with the ffmpeg that imageio-ffmpeg bundles.

imageio-ffmpeg ships ffmpeg but no ffprobe, so the stream facts come from the
banner that ``ffmpeg -i FILE`` writes to stderr.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_DURATION = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\S+.*?: Video: (\w+)(.*)")
_AUDIO = re.compile(r"Stream #\S+.*?: Audio: (\w+)")
_FPS = re.compile(r"(\d+(?:\.\d+)?) fps")
_SIZE = re.compile(r", (\d{2,5})x(\d{2,5})")


@dataclass(frozen=True)
class ProbedClip:
    """What ffmpeg says about a clip; ``None`` where it says nothing."""

    duration_s: float | None
    fps: float | None
    video_codec: str | None
    audio_codec: str | None
    width: int | None = None
    height: int | None = None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def is_mp4(data: bytes) -> bool:
    """Whether the bytes open with an ISO base media ``ftyp`` box, as an MP4 does."""
    return len(data) >= 12 and data[4:8] == b"ftyp"


def probe_clip(data: bytes, *, ffmpeg: str | None = None) -> ProbedClip:
    """Duration, frame rate and streams of an encoded clip.

    Raises:
        RuntimeError: ffmpeg could not read the data at all (its message included).
    """
    if ffmpeg is None:
        import imageio_ffmpeg

        ffmpeg = str(imageio_ffmpeg.get_ffmpeg_exe())
    with tempfile.TemporaryDirectory(prefix="wavespeed-check-") as folder:
        clip = Path(folder) / "clip.mp4"
        clip.write_bytes(data)
        # Without an output file ffmpeg exits 1 after printing the input's streams.
        run = subprocess.run(
            [ffmpeg, "-hide_banner", "-nostdin", "-i", str(clip)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
        )
    return parse_ffmpeg_banner(run.stderr)


def parse_ffmpeg_banner(banner: str) -> ProbedClip:
    """The facts in the stderr of ``ffmpeg -i FILE``."""
    video = _VIDEO.search(banner)
    duration = _DURATION.search(banner)
    audio = _AUDIO.search(banner)
    if video is None and audio is None and duration is None:
        last = banner.strip().splitlines()[-1] if banner.strip() else "no output"
        raise RuntimeError(f"ffmpeg cannot read the clip: {last}")
    fps = _FPS.search(video.group(2)) if video else None
    size = _SIZE.search(video.group(2)) if video else None
    return ProbedClip(
        duration_s=(
            int(duration.group(1)) * 3600
            + int(duration.group(2)) * 60
            + float(duration.group(3))
        )
        if duration
        else None,
        fps=float(fps.group(1)) if fps else None,
        video_codec=video.group(1) if video else None,
        audio_codec=audio.group(1) if audio else None,
        width=int(size.group(1)) if size else None,
        height=int(size.group(2)) if size else None,
    )
