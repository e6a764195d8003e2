"""The small "SYNTHETIC" badge drawn on every frame but the first."""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

# 5x7 glyphs for the letters of the one word we draw; no font file needed.
_GLYPHS = {
    "S": ("01111", "10000", "10000", "01110", "00001", "00001", "11110"),
    "Y": ("10001", "10001", "01010", "00100", "00100", "00100", "00100"),
    "N": ("10001", "11001", "10101", "10011", "10001", "10001", "10001"),
    "T": ("11111", "00100", "00100", "00100", "00100", "00100", "00100"),
    "H": ("10001", "10001", "10001", "11111", "10001", "10001", "10001"),
    "E": ("11111", "10000", "10000", "11110", "10000", "10000", "11111"),
    "I": ("01110", "00100", "00100", "00100", "00100", "00100", "01110"),
    "C": ("01110", "10001", "10000", "10000", "10000", "10001", "01110"),
    " ": ("00000",) * 7,
    "0": ("01110", "10011", "10101", "10101", "10101", "11001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11110", "00001", "00001", "01110", "00001", "00001", "11110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
}
WORD = "SYNTHETIC"
_PAD = 2
_MARGIN = 6
_TEXT_ALPHA = 200  # of 256
_BACK_ALPHA = 110


@cache
def badge_alpha(
    scale: int, label: str = ""
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
    """Per-pixel weights (0-256) of white text and of the dark backing.

    ``label`` (digits: the seed) follows the word, so clips of different seeds
    can be told apart on sight."""
    text_line = WORD + (
        " " + "".join(c for c in label if c in _GLYPHS) if label else ""
    )
    rows = []
    for line in range(7):
        rows.append([int(c) for ch in text_line for c in _GLYPHS[ch][line] + "0"][:-1])
    text = np.array(rows, dtype=np.uint16)
    text = np.kron(text, np.ones((scale, scale), dtype=np.uint16))
    pad = _PAD * scale
    text = np.pad(text, pad)
    back = np.full(text.shape, _BACK_ALPHA, dtype=np.uint16)
    return (text * _TEXT_ALPHA)[..., None], back[..., None]


def badge_scale(width: int, height: int) -> int:
    """Pixels per font pixel for a frame of this size (1 up to 1440 px, then 2...)."""
    return max(1, min(width, height) // 720)


def badge_corner(scale: int, label: str = "") -> tuple[int, int]:
    """(height, width) of the frame corner the badge and its margin cover, even."""
    text, _ = badge_alpha(scale, label)
    margin = _MARGIN * scale
    bh, bw = text.shape[0] + margin, text.shape[1] + margin
    return bh + bh % 2, bw + bw % 2


def draw_badge(
    frame: npt.NDArray[np.uint8],
    index: int,
    *,
    scale: int | None = None,
    label: str = "",
) -> None:
    """Blend the badge, in place, into the bottom-right corner of ``frame``.

    Under the word a one-pixel tick steps along by ``index``, so consecutive frames
    always differ, even where the pan moves less than a pixel.
    """
    height, width = frame.shape[:2]
    if scale is None:
        scale = badge_scale(width, height)
    text, back = badge_alpha(scale, label)
    bh, bw = text.shape[:2]
    margin = _MARGIN * scale
    if bh + margin > height or bw + margin > width:
        return  # a frame too small to mark legibly: leave it clean
    y0, x0 = height - margin - bh, width - margin - bw
    region = frame[y0 : y0 + bh, x0 : x0 + bw]
    # Darken under the whole badge, then blend white text on top (integer maths).
    darker = (region.astype(np.uint16) * (256 - back)) >> 8
    lit = (darker * (256 - text) + 255 * text) >> 8
    region[...] = lit.astype(np.uint8)
    pad = _PAD * scale
    span = bw - 2 * pad
    tick_x = pad + (index * scale) % span
    tick_y = bh - pad + scale // 2
    region[tick_y : tick_y + scale, tick_x : tick_x + scale] = 255
