"""The one-off RGB to I420 conversion behind the pan."""

from __future__ import annotations

import numpy as np
import pytest
from wavespeed_mock.mock_server.media._yuv import YuvCanvas, rgb_to_i420


@pytest.mark.parametrize(("x0", "y0"), [(0, 0), (1, 0), (0, 1), (1, 1), (5, 8)])
def test_a_crop_equals_converting_the_cropped_pixels(x0: int, y0: int) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (51, 77, 3), dtype=np.uint8)
    frame = YuvCanvas(rgb).crop(x0, y0, 64, 40)
    assert frame.shape == (60, 64)
    np.testing.assert_array_equal(frame, rgb_to_i420(rgb[y0 : y0 + 40, x0 : x0 + 64]))


def test_bt601_tv_range() -> None:
    black, white = np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8)
    assert rgb_to_i420(black).tolist() == [[16, 16], [16, 16], [128, 128]]
    assert rgb_to_i420(white).tolist() == [[235, 235], [235, 235], [128, 128]]


def test_paste_writes_a_patch_in_place() -> None:
    rgb = np.zeros((8, 8, 3), np.uint8)
    frame = YuvCanvas(rgb).crop(0, 0, 8, 8)
    patch = np.full((4, 4, 3), 255, np.uint8)
    YuvCanvas.paste(frame, patch, 4, 2)
    assert frame[2:6, 4:8].min() == 235
    assert frame[:2].max() == 16
