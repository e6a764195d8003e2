"""The real Ovi model on a GPU: needs torch, a CUDA device, a checkout and weights.

Point it at them with the server's variables, e.g.::

    WAVESPEED_MOCK_OVI_CHECKOUT=~/Ovi WAVESPEED_MOCK_OVI_CHECKPOINTS=~/Ovi/ckpts \\
        python -m pytest tests/real_engine -m gpu

Each test skips, saying why, where a piece is missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from wavespeed_mock.mock_server.core.engine import engine_option_values
from wavespeed_mock.real_engine import (
    FACTORY_ENV,
    OviEngine,
    OviOptions,
    OviSetupError,
    check_ovi_setup,
)

from .conftest import T2V, OviHarness, png, probe

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def wavespeed_real_ovi(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OviHarness]:
    """An engine on the real model, loaded once for the module."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        pytest.skip("torch is not installed: pip install 'wavespeed-mock[ovi]'")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device is present")
    # The WAVESPEED_MOCK_OVI_* variables, read as the server reads them.
    options = OviOptions.from_mapping(engine_option_values(OviEngine, {}))
    if options.checkout is None:
        pytest.skip("WAVESPEED_MOCK_OVI_CHECKOUT is not set (an Ovi checkout)")
    try:
        check_ovi_setup(
            checkout=options.checkout.expanduser(),
            checkpoints=options.checkpoints and options.checkpoints.expanduser(),
            variant=options.variant,
            device=options.device,
            fp8=options.fp8,
        )
    except OviSetupError as exc:
        pytest.skip(str(exc))
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv(FACTORY_ENV, raising=False)
        engine = OviEngine(options)
    output_dir = tmp_path_factory.mktemp("ovi") / "out"
    try:
        yield OviHarness(engine, Path("/dev/null"), output_dir)
    finally:
        engine.close()


def test_image_to_video_on_the_gpu(wavespeed_real_ovi: OviHarness):
    job = wavespeed_real_ovi.job(
        "A woman smiles and says <S>It works on the real model.<E>"
        "<AUDCAP>Clear female voice, quiet room.<ENDAUDCAP>",
        image=png(720, 720, (90, 120, 160)),
    )
    result = wavespeed_real_ovi.engine.render(job)
    clip = probe(job.output_path)
    assert (clip.frames, clip.width, clip.height, clip.fps) == (121, 704, 704, 24.0)
    assert clip.audio_seconds == pytest.approx(5.02, abs=0.1)
    assert result.inference_ms > 1000


def test_text_to_video_on_the_gpu(wavespeed_real_ovi: OviHarness):
    job = wavespeed_real_ovi.job(
        "A drummer plays on a rooftop at dusk. <AUDCAP>Drums, city noise.<ENDAUDCAP>",
        model=T2V,
        width=992,
        height=512,
    )
    wavespeed_real_ovi.engine.render(job)
    clip = probe(job.output_path)
    assert (clip.frames, clip.width, clip.height) == (121, 992, 512)
