"""write_clip: the lower layer, checked with an independent reader."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from wavespeed_mock.mock_server.media import (
    ClipArrayError,
    ClipSizeError,
    EncoderTimeout,
    MediaError,
    write_clip,
)

from .conftest import count_frames, decode_audio, probe, psnr, read_frames

RATE = 16_000


def gradient_frames(count: int, width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        frames[i, ..., 0] = (x * 2 + i * 3) % 256
        frames[i, ..., 1] = (y * 2) % 256
        frames[i, ..., 2] = 128
    return frames


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    frames = gradient_frames(48, 960, 540)
    path = tmp_path_factory.mktemp("writer") / "clip.mp4"
    write_clip(frames, tone(2.0), RATE, path)
    return path, frames


def test_writes_h264_yuv420p_and_aac_44k_stereo(
    written: tuple[Path, np.ndarray],
) -> None:
    info = probe(written[0])
    assert (info.video_codec, info.pix_fmt) == ("h264", "yuv420p")
    assert (info.audio_codec, info.sample_rate, info.channels) == (
        "aac",
        44100,
        "stereo",
    )
    assert info.fps == 24


def test_keeps_960x540_exactly(written: tuple[Path, np.ndarray]) -> None:
    info = probe(written[0])
    assert (info.width, info.height) == (960, 540)


def test_every_frame_arrives(written: tuple[Path, np.ndarray]) -> None:
    path, frames = written
    assert count_frames(path) == 48
    decoded = read_frames(path, {0, 47})
    assert psnr(decoded[0], frames[0]) > 30
    assert psnr(decoded[47], frames[47]) > 30


def test_audio_arrives(written: tuple[Path, np.ndarray]) -> None:
    samples = decode_audio(written[0])
    assert len(samples) / RATE == pytest.approx(2.0, abs=0.05)
    assert np.sqrt(np.mean(samples**2)) > 0.2  # a 0.5-peak tone has RMS 0.35


def test_generator_and_array_give_the_same_bytes(
    tmp_path: Path, written: tuple[Path, np.ndarray]
) -> None:
    path, frames = written
    again = tmp_path / "again.mp4"
    write_clip((frame for frame in frames), tone(2.0), RATE, again)
    assert again.read_bytes() == path.read_bytes()


def test_stereo_audio_and_float64_are_accepted(tmp_path: Path) -> None:
    stereo = np.stack([tone(0.5), tone(0.5, 220.0)], axis=1).astype(np.float64)
    path = tmp_path / "stereo.mp4"
    write_clip(gradient_frames(6, 64, 48), stereo, RATE, path)
    assert probe(path).channels == "stereo"


def bad_frames() -> Iterator[tuple[str, object, str]]:
    ok = np.zeros((64, 64, 3), np.uint8)
    yield "odd width", np.zeros((2, 64, 63, 3), np.uint8), "width 63 is odd"
    yield "odd height", np.zeros((2, 541, 960, 3), np.uint8), "height 541 is odd"
    yield "tiny", np.zeros((2, 8, 8, 3), np.uint8), "out of range"
    yield "float frames", np.zeros((2, 64, 64, 3), np.float32), "dtype float32"
    yield "grey frames", np.zeros((2, 64, 64), np.uint8), "shape"
    yield "no frames", iter([]), "empty"
    yield "size changes", iter([ok, np.zeros((32, 32, 3), np.uint8)]), "earlier frames"
    yield "not arrays", iter([ok, [[0]]]), "frame 1 is a list"


@pytest.mark.parametrize(
    ("frames", "message"),
    [pytest.param(f, m, id=name) for name, f, m in bad_frames()],
)
def test_bad_frames_are_refused(tmp_path: Path, frames: object, message: str) -> None:
    path = tmp_path / "bad.mp4"
    with pytest.raises((ClipArrayError, ClipSizeError), match=message):
        write_clip(frames, tone(0.2), RATE, path)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        pytest.param(np.zeros(100, np.int16), "dtype int16", id="int"),
        pytest.param(np.full(100, 1.5, np.float32), "peaks at 1.5", id="loud"),
        pytest.param(np.full(100, np.nan, np.float32), "NaN", id="nan"),
        pytest.param(np.zeros((100, 3), np.float32), "shape", id="three channels"),
        pytest.param(np.zeros(0, np.float32), "empty", id="empty"),
        pytest.param([0.0, 0.1], "list", id="list"),
    ],
)
def test_bad_audio_is_refused(tmp_path: Path, audio: object, message: str) -> None:
    with pytest.raises(ClipArrayError, match=message):
        write_clip(gradient_frames(2, 64, 64), audio, RATE, tmp_path / "x.mp4")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_errors_are_media_errors_and_value_errors() -> None:
    assert issubclass(ClipArrayError, MediaError)
    assert issubclass(ClipArrayError, ValueError)


def test_a_failing_frame_source_leaves_nothing_behind(tmp_path: Path) -> None:
    def frames() -> Iterator[np.ndarray]:
        yield from gradient_frames(3, 64, 64)
        raise RuntimeError("the model crashed")

    target = tmp_path / "clip.mp4"
    with pytest.raises(RuntimeError, match="the model crashed"):
        write_clip(frames(), tone(0.2), RATE, target)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"old")
    write_clip(gradient_frames(4, 64, 64), tone(0.2), RATE, target)
    assert target.read_bytes()[4:8] == b"ftyp"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_ffmpeg_is_stopped_at_the_time_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoders: list[subprocess.Popen[bytes]] = []
    popen = subprocess.Popen

    def recording_popen(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        encoders.append(popen(*args, **kwargs))  # type: ignore[call-overload]
        return encoders[-1]

    monkeypatch.setattr(subprocess, "Popen", recording_popen)

    def stalled() -> Iterator[np.ndarray]:
        """A model that hangs after one frame, until the encoder has been stopped."""
        frames = gradient_frames(2, 64, 64)
        yield frames[0]
        deadline = time.monotonic() + 60  # a bound on a missing watchdog, not a timing
        while not (encoders and encoders[0].poll() is not None):
            assert time.monotonic() < deadline, "ffmpeg was never stopped"
            time.sleep(0.01)
        yield frames[1]

    with pytest.raises(EncoderTimeout, match="limit"):
        write_clip(stalled(), tone(0.2), RATE, tmp_path / "slow.mp4", timeout_s=0.3)
    [ffmpeg] = encoders
    assert ffmpeg.returncode is not None and ffmpeg.returncode != 0  # stopped
    assert list(tmp_path.iterdir()) == []


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    frames = gradient_frames(2, 64, 64)
    with pytest.raises(ClipArrayError, match="sample_rate"):
        write_clip(frames, tone(0.1), 100, tmp_path / "x.mp4")
    with pytest.raises(ClipArrayError, match="fps"):
        write_clip(frames, tone(0.1), RATE, tmp_path / "x.mp4", fps=0)
    with pytest.raises(ClipArrayError, match="threads"):
        write_clip(frames, tone(0.1), RATE, tmp_path / "x.mp4", threads=0)


def test_i420_frames_are_written_as_given(tmp_path: Path) -> None:
    from wavespeed_mock.mock_server.media._yuv import rgb_to_i420

    rgb = gradient_frames(6, 96, 64)
    path = tmp_path / "i420.mp4"
    write_clip(
        [rgb_to_i420(f) for f in rgb], tone(0.3), RATE, path, pixel_format="yuv420p"
    )
    info = probe(path)
    assert (info.width, info.height, info.pix_fmt) == (96, 64, "yuv420p")
    assert psnr(read_frames(path, {5})[5], rgb[5]) > 30


def test_i420_frames_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ClipArrayError, match="I420"):
        write_clip(
            gradient_frames(2, 64, 64),
            tone(0.1),
            RATE,
            tmp_path / "x.mp4",
            pixel_format="yuv420p",
        )
    with pytest.raises(ClipArrayError, match="pixel_format"):
        write_clip(
            gradient_frames(2, 64, 64),
            tone(0.1),
            RATE,
            tmp_path / "x.mp4",
            pixel_format="nv12",
        )  # type: ignore[arg-type]
