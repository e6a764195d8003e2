"""Frame decoding for tests, with every pipe closed before it returns.

``imageio_ffmpeg.read_frames`` closed early leaves its ffmpeg pipes to the
garbage collector, and the ResourceWarning that follows fails a suite run with
``-W error``; one ``subprocess.run`` owns and closes its pipes itself.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np


def decode_frames(path: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` video frames of ``path`` as RGB uint8 arrays."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    probe = subprocess.run(
        [ffmpeg, "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stderr
    size = _video_size(probe)
    done = subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-frames:v",
            str(count),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    width, height = size
    frame_bytes = width * height * 3
    raw = done.stdout
    return [
        np.frombuffer(raw[i : i + frame_bytes], np.uint8).reshape(height, width, 3)
        for i in range(0, len(raw) - frame_bytes + 1, frame_bytes)
    ]


def _video_size(ffmpeg_banner: str) -> tuple[int, int]:
    import re

    match = re.search(r"Video: .*?, (\d{2,5})x(\d{2,5})", ffmpeg_banner)
    assert match, ffmpeg_banner
    return int(match.group(1)), int(match.group(2))
