"""The badge names the seed, and the pan's border carries the edge out."""

from __future__ import annotations

import numpy as np
from wavespeed_mock.mock_server.media._badge import badge_alpha, draw_badge
from wavespeed_mock.mock_server.media.frames import pad_canvas


def test_the_badge_names_the_seed_so_clips_differ_on_sight() -> None:
    plain, _ = badge_alpha(1)
    labelled, _ = badge_alpha(1, "42")
    assert labelled.shape[1] > plain.shape[1]  # the digits follow the word
    one, two = (np.full((200, 300, 3), 80, np.uint8) for _ in range(2))
    draw_badge(one, 1, label="42")
    draw_badge(two, 1, label="43")
    assert not np.array_equal(one, two)


def test_the_padding_repeats_the_edge_instead_of_mirroring_it() -> None:
    base = np.zeros((4, 4, 3), np.uint8)
    base[:, 0] = 200  # a bright left column, dark inside
    padded = pad_canvas(base, 2)
    # Left of the image: the edge's own colour, not the dark pixels a mirror brings.
    assert (padded[2:6, 0:2] == 200).all()
