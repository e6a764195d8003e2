"""Frame decoding for tests, with every pipe closed before it returns.

``imageio_ffmpeg.read_frames`` closed early leaves its ffmpeg pipes to the
garbage collector, and the ResourceWarning that follows fails a suite run with
``-W error``; one ``subprocess.run`` owns and closes its pipes itself.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np

# The size of the raw output stream, as ffmpeg describes it on stderr.
_OUTPUT_VIDEO_SIZE = re.compile(
    r"Output #0.*?Video: rawvideo.*?, (\d{2,5})x(\d{2,5})", re.DOTALL
)


def decode_frames(path: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` video frames of ``path`` as RGB uint8 arrays."""
    done = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
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
    log = done.stderr.decode(errors="replace")
    size = _OUTPUT_VIDEO_SIZE.search(log)
    assert size, log
    width, height = int(size.group(1)), int(size.group(2))
    frame_bytes = width * height * 3
    raw = done.stdout
    return [
        np.frombuffer(raw[i : i + frame_bytes], np.uint8).reshape(height, width, 3)
        for i in range(0, len(raw) - frame_bytes + 1, frame_bytes)
    ]


def probe(mp4: bytes, folder: Path) -> str:
    """What the bundled ffmpeg says about an MP4 (it has no ffprobe): its stderr."""
    path = folder / "probed.mp4"
    path.write_bytes(mp4)
    out = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stderr
