"""Ovi's float video as uint8 frames for the clip writer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from wavespeed_mock.mock_server.media._yuv import rgb_to_i420
from wavespeed_mock.real_engine._frames import (
    check_clip,
    video_frames,
    video_i420_frames,
)


def test_values_map_to_bytes_with_rounding_and_clipping():
    video = np.array([-1.5, -1.0, 0.0, 0.5, 1.0, 2.0], np.float32)
    video = np.broadcast_to(video, (3, 1, 2, 6)).copy()
    (frame,) = video_frames(video)
    assert frame.dtype == np.uint8
    assert frame.shape == (2, 6, 3)
    assert frame[0, :, 0].tolist() == [0, 0, 128, 191, 255, 255]


def test_channels_become_the_last_axis():
    video = np.zeros((3, 2, 4, 6), np.float32)
    video[0] = 1.0  # red
    video[2, 1] = 1.0  # blue in the second frame only
    first, second = video_frames(video)
    assert first[0, 0].tolist() == [255, 128, 128]
    assert second[0, 0].tolist() == [255, 128, 255]


def test_frames_are_separate_arrays():
    frames = list(
        video_frames(
            np.linspace(-1, 1, 3 * 3 * 4, dtype=np.float32).reshape(3, 3, 2, 2)
        )
    )
    assert len({id(f) for f in frames}) == 3
    assert not np.array_equal(frames[0], frames[2])


@given(hnp.arrays(np.float32, (3, 2, 3, 4), elements=st.floats(-1, 1, width=32)))
def test_matches_the_plain_formula(video: np.ndarray):
    expected = np.clip(np.floor((video + 1) * 127.5 + 0.5), 0, 255).astype(np.uint8)
    got = np.stack(list(video_frames(video)))
    assert np.abs(got.astype(int) - expected.transpose(1, 2, 3, 0)).max() <= 1


@pytest.mark.parametrize(
    ("video", "audio", "problem"),
    [
        (np.zeros((121, 8, 8, 3)), np.zeros(4), "expected a float array (3, frames"),
        (np.zeros((3, 0, 8, 8)), np.zeros(4), "an empty video"),
        (np.zeros((3, 1, 8, 8)), None, "audio of type NoneType"),
        (np.zeros((3, 1, 8, 8)), np.zeros((4, 2)), "expected a 1-D float array"),
        ("video", np.zeros(4), "video of type str"),
    ],
)
def test_check_clip_says_what_is_wrong(video: object, audio: object, problem: str):
    message = check_clip(video, audio)
    assert message is not None
    assert problem in message


def test_check_clip_accepts_ovis_layout():
    assert check_clip(np.zeros((3, 121, 32, 32), np.float32), np.zeros(80_384)) is None


def _i420_planes(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h = frame.shape[0] * 2 // 3
    chroma = frame[h:].reshape(2, h // 2, frame.shape[1] // 2)
    return frame[:h], chroma[0], chroma[1]


@pytest.mark.parametrize(
    ("level", "expected"),
    [(-1.0, (16, 128, 128)), (1.0, (235, 128, 128)), (-7.0, (16, 128, 128))],
)
def test_i420_frames_of_black_and_white(level: float, expected: tuple[int, ...]):
    video = np.full((3, 1, 4, 6), level, np.float32)
    (frame,) = video_i420_frames(video)
    assert frame.dtype == np.uint8
    assert frame.shape == (6, 6)
    y, u, v = _i420_planes(frame)
    assert (y.min(), u.min(), v.min()) == expected
    assert (y.max(), u.max(), v.max()) == expected


def test_i420_frames_of_pure_red_follow_bt601():
    video = np.full((3, 1, 2, 2), -1.0, np.float32)
    video[0] = 1.0
    (frame,) = video_i420_frames(video)
    y, u, v = _i420_planes(frame)
    # BT.601 TV range: red is Y 81, Cb 90, Cr 240.
    assert (int(y[0, 0]), int(u[0, 0]), int(v[0, 0])) == (81, 90, 240)


@given(hnp.arrays(np.float32, (3, 2, 4, 6), elements=st.floats(-1.25, 1.25, width=32)))
def test_i420_frames_match_the_rgb_route(video: np.ndarray):
    expected = [rgb_to_i420(frame) for frame in video_frames(video)]
    got = list(video_i420_frames(video))
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        # The RGB route rounds to bytes before converting: one level apart at most.
        assert np.abs(mine.astype(int) - theirs.astype(int)).max() <= 1


def test_i420_frames_are_separate_arrays():
    video = np.linspace(-1, 1, 3 * 2 * 2 * 2, dtype=np.float32).reshape(3, 2, 2, 2)
    first, second = video_i420_frames(video)
    assert first is not second
    assert not np.array_equal(first, second)


def test_i420_needs_an_even_size():
    with pytest.raises(ValueError, match="even width and height"):
        list(video_i420_frames(np.zeros((3, 1, 3, 4), np.float32)))
