"""The GPU tests' own rules, checked without a GPU: a missing piece fails under
``WAVESPEED_MOCK_REQUIRE_GPU=1``, and the content check rejects broken clips."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from wavespeed_mock.mock_server.media.writer import write_clip
from wavespeed_mock.real_engine import VARIANTS

from .conftest import OviHarness
from .test_gpu import REQUIRE_GPU_ENV, assert_real_content, ovi_options


def test_a_missing_piece_skips_by_default(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(REQUIRE_GPU_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception):
        ovi_options("720x720_5s")  # no CUDA here (nor, in CI, torch)


def test_a_missing_piece_fails_when_a_gpu_is_required(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv(REQUIRE_GPU_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="nothing may be missing"):
        ovi_options("720x720_5s")


def test_the_content_check_accepts_a_clip_with_picture_and_sound(
    wavespeed_fake_ovi: OviHarness,
):
    job = wavespeed_fake_ovi.job()
    wavespeed_fake_ovi.engine.render(job)
    assert_real_content(job.output_path, VARIANTS["720x720_5s"])


@pytest.mark.parametrize(
    ("video", "audio", "problem"),
    [
        ("black", 0.5, "black"),  # what NaN frames become
        ("flat", 0.5, "one flat colour"),
        ("still", 0.5, "every frame is the same"),
        ("moving", 0.0, "silent"),
    ],
)
def test_the_content_check_rejects_a_broken_clip(
    tmp_path: Path, video: str, audio: float, problem: str
):
    variant = VARIANTS["720x720_5s"]
    still = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)

    def frames() -> Iterator[np.ndarray]:
        for index in range(variant.frames):
            if video == "black":
                yield np.zeros_like(still)
            elif video == "flat":
                yield np.full_like(still, 160)
            elif video == "still":
                yield still
            else:
                yield np.roll(still, index, axis=1)

    t = np.arange(variant.audio_samples, dtype=np.float32) / 16_000
    sound = (audio * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / "broken.mp4"
    write_clip(frames(), sound, 16_000, path, fps=24, threads=1)
    with pytest.raises(AssertionError, match=problem):
        assert_real_content(path, variant)
