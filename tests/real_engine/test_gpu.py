"""The real Ovi model on a GPU, through ``serve`` and the contract check.

Needs torch, a CUDA device, flash-attn, an Ovi checkout and the weights of each
variant under test. Point it at them with the server's variables::

    WAVESPEED_MOCK_REQUIRE_GPU=1 WAVESPEED_MOCK_OVI_CHECKOUT=~/Ovi \\
        python -m pytest tests/real_engine -m gpu -rs

Each variant's test starts ``wavespeed-mock serve --engine ovi --ovi-variant V``,
runs the contract check against it, then downloads both clips and checks their
content: the variant's frame count and audio length, frames that are neither
constant nor black (what NaN becomes), and audio that is not silent.

Without ``WAVESPEED_MOCK_REQUIRE_GPU=1`` a missing piece skips, saying which; with
it, the same piece fails the test, so a half-installed GPU machine is red.
``WAVESPEED_MOCK_OVI_VARIANT`` picks one variant (the others are deselected, not
missing), for a machine with one variant's weights.
"""

from __future__ import annotations

import importlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import imageio_ffmpeg
import numpy as np
import pytest
from wavespeed_mock.mock_server.core.engine import engine_option_values
from wavespeed_mock.plugins.check import run_contract_check
from wavespeed_mock.real_engine import (
    FACTORY_ENV,
    VARIANTS,
    OviEngine,
    OviOptions,
    OviSetupError,
    OviVariant,
    check_ovi_setup,
)

from .._video import decode_frames
from .conftest import clip_outputs, probe, serve_in_child

REQUIRE_GPU_ENV = "WAVESPEED_MOCK_REQUIRE_GPU"
LOAD_WAIT_S = 1800.0
CLIP_WAIT_S = 1800.0
"""The 10 s variant takes about 12 minutes per clip on some GPUs (Ovi#84)."""

pytestmark = pytest.mark.gpu


def missing(reason: str) -> NoReturn:
    """Skip for ``reason``, or fail where ``WAVESPEED_MOCK_REQUIRE_GPU=1``."""
    __tracebackhide__ = True
    if os.environ.get(REQUIRE_GPU_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_GPU_ENV}=1: nothing may be missing)")
    pytest.skip(reason)


def ovi_options(variant: str) -> OviOptions:
    """The ``WAVESPEED_MOCK_OVI_*`` options, read as the server reads them,
    checked for ``variant``: whatever is missing is :func:`missing`."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        missing("torch is not installed: pip install '.[ovi]' (docs/real-engine.md)")
    if not torch.cuda.is_available():
        missing("no CUDA device is present")
    values = engine_option_values(OviEngine, {"variant": variant})
    options = OviOptions.from_mapping(values)
    if options.checkout is None:
        missing("WAVESPEED_MOCK_OVI_CHECKOUT is not set (an Ovi checkout)")
    try:
        check_ovi_setup(
            checkout=options.checkout.expanduser(),
            checkpoints=options.checkpoints and options.checkpoints.expanduser(),
            variant=variant,
            devices=options.device_list,
            fp8=options.fp8,
            qint8=options.qint8,
        )
    except (OviSetupError, ValueError) as exc:
        missing(str(exc))
    return options


@pytest.fixture(scope="module", params=list(VARIANTS))
def real_ovi_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, OviVariant]]:
    """``serve --engine ovi`` on the real model, one variant at a time."""
    variant: str = request.param
    chosen = os.environ.get("WAVESPEED_MOCK_OVI_VARIANT")
    if chosen and chosen != variant:
        pytest.skip(f"WAVESPEED_MOCK_OVI_VARIANT={chosen} selects another variant")
    ovi_options(variant)
    tmp = tmp_path_factory.mktemp(f"ovi-{variant}")
    saved = os.environ.pop(FACTORY_ENV, None)  # the real model, never a stand-in
    try:
        with serve_in_child(
            ["--engine", "ovi", "--ovi-variant", variant], tmp, wait_s=LOAD_WAIT_S
        ) as url:
            yield url, VARIANTS[variant]
    finally:
        if saved is not None:
            os.environ[FACTORY_ENV] = saved


def test_serve_passes_the_contract_check_with_real_clips(
    real_ovi_server: tuple[str, OviVariant], tmp_path: Path
):
    url, variant = real_ovi_server
    report = run_contract_check(
        url, "test-key", timeout_s=CLIP_WAIT_S, poll_interval_s=2
    )
    assert report.ok, report.render()
    clips = clip_outputs(url)
    assert len(clips) == 2  # one image-to-video, one text-to-video
    for index, clip in enumerate(clips):
        path = tmp_path / f"clip-{index}.mp4"
        path.write_bytes(clip)
        assert_real_content(path, variant)


def assert_real_content(path: Path, variant: OviVariant) -> None:
    """What a real generation gives, and a broken one (NaN, zeros) does not."""
    __tracebackhide__ = True
    clip = probe(path)
    assert (clip.frames, clip.fps) == (variant.frames, float(variant.fps))
    audio_s = variant.audio_samples / 16_000
    assert clip.audio_seconds == pytest.approx(audio_s, abs=0.1)
    frames = np.stack(decode_frames(path, variant.frames)).astype(np.float32)
    # NaN from the model becomes black after the conversion to bytes; a stuck
    # generation repeats one frame.
    assert float(frames.mean()) > 2.0, "the frames are black (NaN or zeros)"
    assert float(frames.std()) > 2.0, "the frames are one flat colour"
    motion = np.abs(np.diff(frames, axis=0)).mean()
    assert float(motion) > 0.1, "every frame is the same"
    samples = decode_audio(path)
    assert np.isfinite(samples).all()
    rms = float(np.sqrt(np.mean(np.square(samples))))
    assert rms > 1e-3, f"the audio is silent (RMS {rms:.2e})"


def decode_audio(path: Path) -> np.ndarray:
    """The clip's audio as mono float32 samples at 16 kHz."""
    done = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-ac",
            "1",
            "-ar",
            "16000",
            "-f",
            "f32le",
            "-",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return np.frombuffer(done.stdout, dtype=np.float32)
