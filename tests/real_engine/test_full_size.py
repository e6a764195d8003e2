"""A clip at Ovi's real size: 121 frames of 704x704 (720 MB of float32)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .conftest import T2V, png, probe, start_fake_ovi


@pytest.mark.slow
def test_a_full_size_clip_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fake = start_fake_ovi(tmp_path, monkeypatch, frame="ovi")
    with fake.engine:
        square = fake.job(image=png(1024, 1024))
        fake.engine.render(square)
        wide = fake.job(model=T2V, width=992, height=512, seed=3)
        fake.engine.render(wide)
    clip = probe(square.output_path)
    assert (clip.frames, clip.width, clip.height) == (121, 704, 704)
    assert clip.audio_seconds == pytest.approx(5.02, abs=0.1)
    # The stand-in's first frame, through the conversion and the encoder.
    assert clip.first_frame.shape == (704, 704, 3)
    assert 20 < float(np.mean(clip.first_frame)) < 235
    wide_clip = probe(wide.output_path)
    assert (wide_clip.frames, wide_clip.width, wide_clip.height) == (121, 992, 512)
