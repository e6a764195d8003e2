"""Ovi's float video as uint8 frames for the clip writer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from wavespeed_mock.real_engine._frames import check_clip, video_frames


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
