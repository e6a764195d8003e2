"""SyntheticEngine: the engine seam, backed by the clip cache."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image
from wavespeed_mock.mock_server.core.engine import (
    Engine,
    RenderFailed,
    RenderJob,
    load_engine_class,
)
from wavespeed_mock.mock_server.settings import Settings
from wavespeed_mock.mock_server.synthetic_engine import SyntheticEngine


@pytest.fixture
def wavespeed_engine(tmp_path: Path) -> SyntheticEngine:
    return SyntheticEngine(Settings(data_dir=tmp_path / "data"))


def job(tmp_path: Path, name: str, **changes: object) -> RenderJob:
    fields: dict[str, object] = {
        "prediction_id": name,
        "model": "character-ai/ovi/text-to-video",
        "prompt": "A bell rings <S>Hello<E>",
        "seed": 3,
        "width": 64,
        "height": 32,
        "output_path": tmp_path / "out" / f"{name}.mp4",
    }
    fields.update(changes)
    return RenderJob(**fields)  # type: ignore[arg-type]


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_is_the_registered_synthetic_engine(wavespeed_engine: SyntheticEngine) -> None:
    assert load_engine_class("synthetic") is SyntheticEngine
    assert isinstance(wavespeed_engine, Engine)
    assert SyntheticEngine.name == "synthetic"
    assert SyntheticEngine.max_concurrency == (os.cpu_count() or 1)
    assert SyntheticEngine.reports_progress is False


def test_renders_through_the_cache(
    wavespeed_engine: SyntheticEngine, tmp_path: Path
) -> None:
    first = job(tmp_path, "a")
    result = wavespeed_engine.render(first)
    assert result.inference_ms >= 0
    assert result.nsfw == (False,)
    cached = list((tmp_path / "data" / "cache").rglob("*.mp4"))
    assert len(cached) == 1
    assert first.output_path.read_bytes() == cached[0].read_bytes()
    # A second prediction with the same inputs gets its own file, from the cache.
    second = job(tmp_path, "b")
    wavespeed_engine.render(second)
    assert second.output_path.read_bytes() == cached[0].read_bytes()
    assert os.path.samefile(second.output_path, cached[0])  # hard-linked, not copied
    wavespeed_engine.close()


def test_image_to_video_takes_the_size_from_the_image(
    wavespeed_engine: SyntheticEngine, tmp_path: Path
) -> None:
    from .media.conftest import probe

    i2v = job(
        tmp_path,
        "i2v",
        image=png(64, 64),
        width=None,
        height=None,
        model="character-ai/ovi/image-to-video",
    )
    wavespeed_engine.render(i2v)
    info = probe(i2v.output_path)
    assert (info.width, info.height) == (704, 704)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (b"not an image", "not a readable image"),
        (png(200, 200), "the limit is 1,000"),
    ],
    ids=["undecodable", "too many pixels"],
)
def test_bad_images_fail_with_1402(tmp_path: Path, image: bytes, message: str) -> None:
    engine = SyntheticEngine(
        Settings(data_dir=tmp_path / "data", max_image_pixels=1_000)
    )
    bad = job(
        tmp_path,
        "bad",
        image=image,
        width=None,
        height=None,
        image_source="https://example.com/cat.png",
    )
    with pytest.raises(RenderFailed, match=message) as caught:
        engine.render(bad)
    assert caught.value.code == 1402
    assert "https://example.com/cat.png" in str(caught.value)
    assert not bad.output_path.exists()


def test_other_bad_input_fails_with_1405(
    wavespeed_engine: SyntheticEngine, tmp_path: Path
) -> None:
    with pytest.raises(RenderFailed) as caught:
        wavespeed_engine.render(job(tmp_path, "odd", width=63))
    assert caught.value.code == 1405
