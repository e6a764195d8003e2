"""Shared clips and an independent reader for the media tests.

Clips are rendered once per session and shared. The reader never trusts the
writer: it parses ``ffmpeg -i`` (the bundled ffmpeg has no ffprobe), counts and
decodes frames with imageio-ffmpeg and decodes the audio to PCM itself.
"""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image, ImageDraw
from wavespeed_mock.mock_server.media import render_clip

from ..._video import decode_frames

SPEECH_PROMPT = (
    "A woman looks into the camera and says <S>Good morning, everyone, and welcome "
    "to the show.<E> <AUDCAP>Soft rain on a window, a distant piano.<ENDAUDCAP>"
)
PLAIN_PROMPT = "A quiet harbour at dawn, boats rocking gently."


@dataclass(frozen=True)
class Probe:
    """What ``ffmpeg -i`` says about a file."""

    width: int
    height: int
    fps: float
    video_codec: str
    pix_fmt: str
    audio_codec: str
    sample_rate: int
    channels: str
    duration_s: float
    text: str


def probe(path: Path) -> Probe:
    done = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        timeout=30,
    )
    text = done.stderr.decode("utf-8", "replace")
    video = re.search(
        r"Stream #\S+.*?: Video: (\w+).*?, (\w+)\(.*?, (\d+)x(\d+).*?, ([\d.]+) fps",
        text,
    )
    audio = re.search(r"Stream #\S+.*?: Audio: (\w+).*?, (\d+) Hz, (\w+)", text)
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    assert video, text
    assert audio, text
    assert duration, text
    h, m, s = duration.groups()
    return Probe(
        width=int(video.group(3)),
        height=int(video.group(4)),
        fps=float(video.group(5)),
        video_codec=video.group(1),
        pix_fmt=video.group(2),
        audio_codec=audio.group(1),
        sample_rate=int(audio.group(2)),
        channels=audio.group(3),
        duration_s=int(h) * 3600 + int(m) * 60 + float(s),
        text=text,
    )


def count_frames(path: Path) -> int:
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    return int(frames)


def read_frames(path: Path, indices: set[int]) -> dict[int, np.ndarray]:
    """Decode the frames at ``indices`` (RGB uint8)."""
    frames = decode_frames(path, max(indices) + 1)
    return {index: frames[index] for index in indices if index < len(frames)}


def decode_audio(path: Path, rate: int = 16_000) -> np.ndarray:
    """The audio track as mono float samples in [-1, 1] at ``rate``."""
    done = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(path),
            "-vn",
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            str(rate),
            "-",
        ],
        capture_output=True,
        timeout=30,
        check=True,
    )
    return np.frombuffer(done.stdout, np.int16).astype(np.float64) / 32768.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def make_picture(width: int, height: int, *, fmt: str = "PNG", seed: int = 0) -> bytes:
    """A test picture with gradients, shapes and edges (not flat, not noise)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            128 + 90 * np.sin(x / (width / 7) + seed),
            128 + 90 * np.cos(y / (height / 5)),
            255 * (x + y) / (width + height),
        ],
        axis=-1,
    )
    image = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for i in range(6):
        x0, y0 = (i * 0.15 + 0.05) * width, (0.6 - i * 0.08) * height
        box = (x0, y0, x0 + width * 0.18, y0 + height * 0.22)
        draw.ellipse(box, fill=(40 * i, 255 - 30 * i, 90), outline=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def wavespeed_media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


RenderFn = Callable[..., Path]


@pytest.fixture(scope="session")
def wavespeed_render(wavespeed_media_dir: Path) -> RenderFn:
    """Render a clip once per distinct set of arguments, per session."""
    done: dict[tuple[object, ...], Path] = {}

    def render(
        *,
        image: bytes | None = None,
        prompt: str = SPEECH_PROMPT,
        seed: int = 42,
        size: tuple[int, int] | None = None,
        name: str | None = None,
    ) -> Path:
        key = (image, prompt, seed, size, name)
        if key not in done:
            path = wavespeed_media_dir / f"clip{len(done)}.mp4"
            render_clip(image=image, prompt=prompt, seed=seed, size=size, path=path)
            done[key] = path
        return done[key]

    return render


@pytest.fixture(scope="session")
def wavespeed_square_image() -> bytes:
    return make_picture(600, 600)


@pytest.fixture(scope="session")
def wavespeed_square_clip(
    wavespeed_render: RenderFn, wavespeed_square_image: bytes
) -> Path:
    return wavespeed_render(image=wavespeed_square_image)
