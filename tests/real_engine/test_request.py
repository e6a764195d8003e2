"""Mapping a RenderJob to Ovi's call, without a worker."""

from __future__ import annotations

import inspect
import io
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from wavespeed_mock.mock_server.core.engine import RenderFailed, RenderJob
from wavespeed_mock.real_engine import VARIANTS, GenerationParams, OviLike
from wavespeed_mock.real_engine._request import build_call, image_array, resolve_seed

from .conftest import I2V, T2V, png
from .fake_ovi import FakeOviFusionEngine

VARIANT = VARIANTS["720x720_5s"]


def job(model: str = I2V, **changes: object) -> RenderJob:
    fields: dict[str, object] = {
        "prediction_id": "p",
        "model": model,
        "prompt": "hi",
        "seed": 1,
        "width": None,
        "height": None,
        "output_path": Path("out.mp4"),
        "image": png() if model == I2V else None,
    }
    fields.update(changes)
    return RenderJob(**fields)  # type: ignore[arg-type]


def test_the_call_names_every_keyword_of_ovis_generate():
    call = build_call(job(), params=GenerationParams(), variant=VARIANT)
    names = set(call.generate_kwargs(None))
    # The stand-in copies Ovi's signature; the Protocol states it for the engine.
    assert names == set(inspect.signature(FakeOviFusionEngine.generate).parameters) - {
        "self"
    }
    assert names == set(inspect.signature(OviLike.generate).parameters) - {"self"}


def test_params_can_be_changed():
    params = GenerationParams(sample_steps=30, solver_name="euler")
    kwargs = build_call(job(), params=params, variant=VARIANT).generate_kwargs(None)
    assert (kwargs["sample_steps"], kwargs["solver_name"]) == (30, "euler")


def test_image_to_video_decodes_the_image():
    call = build_call(
        job(image=png(30, 20, (1, 2, 3))), params=GenerationParams(), variant=VARIANT
    )
    assert call.video_frame_height_width is None
    assert call.image is not None
    assert call.image.shape == (20, 30, 3)
    assert call.image.dtype == np.uint8
    assert tuple(call.image[0, 0]) == (1, 2, 3)


def test_an_image_the_server_did_not_fetch_fails_1402_naming_the_flag():
    # The synthetic engine animates a placeholder for an unfetched URL; Ovi
    # must not: its clip would be of the wrong picture, and "completed".
    with pytest.raises(RenderFailed, match="--fetch-remote-images") as failed:
        build_call(
            job(image_source="placeholder"), params=GenerationParams(), variant=VARIANT
        )
    assert failed.value.code == 1402
    fetched = job(image_source="remote")
    assert (
        build_call(fetched, params=GenerationParams(), variant=VARIANT).image
        is not None
    )


def test_image_to_video_without_an_image_fails():
    with pytest.raises(RenderFailed, match="needs an image") as failed:
        build_call(job(image=None), params=GenerationParams(), variant=VARIANT)
    assert failed.value.code == 1400


def test_text_to_video_size_is_height_then_width():
    call = build_call(
        job(T2V, width=992, height=512), params=GenerationParams(), variant=VARIANT
    )
    assert call.image is None
    assert call.generate_kwargs(None)["video_frame_height_width"] == [512, 992]


def test_text_to_video_without_a_size_gets_the_variants_square():
    call = build_call(job(T2V), params=GenerationParams(), variant=VARIANT)
    assert call.video_frame_height_width == (720, 720)


def test_an_unknown_model_fails_with_1401():
    with pytest.raises(RenderFailed, match="not 'acme/other'") as failed:
        build_call(job("acme/other"), params=GenerationParams(), variant=VARIANT)
    assert failed.value.code == 1401


def test_decode_applies_exif_rotation_and_drops_alpha():
    image = Image.new("RGBA", (40, 20), (5, 6, 7, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", exif=exif)
    assert image_array(buffer.getvalue()).shape == (40, 20, 3)
    assert image_array(png(4, 2, (1, 2, 3, 4), mode="RGBA")).shape == (2, 4, 3)


def test_undecodable_bytes_fail_with_1402_naming_the_source():
    with pytest.raises(
        RenderFailed, match=re.escape("'https://x/a.png' cannot be used")
    ) as caught:
        image_array(b"<html>", source="https://x/a.png")
    assert caught.value.code == 1402


def test_an_image_over_the_pixel_limit_fails_1402_before_decoding():
    # The real engine's decoder applies the server's pixel limit (the job's).
    with pytest.raises(RenderFailed, match=r"20x10 = 200 pixels; the limit is 100"):
        image_array(png(20, 10, (1, 2, 3)), max_pixels=100)
    assert image_array(png(20, 10, (1, 2, 3)), max_pixels=200).shape == (10, 20, 3)
    with pytest.raises(RenderFailed, match="the limit is 100") as caught:
        build_call(
            job(image=png(20, 10, (1, 2, 3)), max_image_pixels=100),
            params=GenerationParams(),
            variant=VARIANT,
        )
    assert caught.value.code == 1402


@given(st.integers(0, 2**31 - 1))
def test_a_given_seed_passes_through(seed: int):
    assert resolve_seed(seed) == seed


@settings(max_examples=20)
@given(st.just(-1))
def test_minus_one_draws_a_seed_in_range(seed: int):
    assert 0 <= resolve_seed(seed) < 2**31


@pytest.mark.parametrize("seed", [-2, 2**31, 2**64 - 1])
def test_seeds_out_of_range_fail(seed: int):
    with pytest.raises(RenderFailed, match="out of range") as failed:
        resolve_seed(seed)
    assert failed.value.code == 1401
