"""Output sizes: Ovi's fixed-area rule for images, the contract's sizes for text."""

from __future__ import annotations

import math
import re

from .errors import ClipSizeError
from .writer import check_clip_size

__all__ = [
    "DEFAULT_TEXT_TO_VIDEO_SIZE",
    "OVI_AREA",
    "OVI_SIDE_MULTIPLE",
    "output_size_for_image",
    "parse_size",
]

OVI_AREA = 720 * 720
"""The pixel area of Ovi 1.0 (``720x720_5s``), the variant WaveSpeed serves."""
OVI_SIDE_MULTIPLE = 32
DEFAULT_TEXT_TO_VIDEO_SIZE = (960, 540)
"""The contract's default ``size`` ("960*540"), made exactly: Ovi itself would
round 540 to 544, but the hosted output size is not documented. [inferred]"""

_SIZE = re.compile(r"\s*(\d{1,5})\s*[x*]\s*(\d{1,5})\s*", re.IGNORECASE)


def output_size_for_image(
    width: int, height: int, *, area: int = OVI_AREA, multiple: int = OVI_SIDE_MULTIPLE
) -> tuple[int, int]:
    """The (width, height) Ovi makes for an input image of this size.

    Sides are multiples of ``multiple``, the aspect ratio stays close to the
    image's, and the area is the closest such area to ``area``: a square image
    gives 704x704, 16:9 landscape 960x544 and 9:16 portrait 544x960. This restates
    the rule Ovi applies before encoding the image (see the reference notes,
    ``ovi-model.md`` §3.2); ties go to the closer aspect ratio.

    Example:
        >>> output_size_for_image(1920, 1080)
        (960, 544)
    """
    if width < 1 or height < 1:
        raise ClipSizeError(f"An image of {width}x{height} pixels has no area.")
    aspect = width / height
    units = max(1, area // (multiple * multiple))
    rows0 = max(1, round(math.sqrt(units / aspect)))
    candidates = []
    for rows in range(max(1, rows0 - 3), rows0 + 4):
        cols = max(1, round(rows * aspect))
        candidates.append((cols * multiple, rows * multiple))
    # Scaling both sides straight to the area, then rounding, is one more candidate.
    scale = math.sqrt(area / (width * height))
    candidates.append(
        (
            max(multiple, round(width * scale / multiple) * multiple),
            max(multiple, round(height * scale / multiple) * multiple),
        )
    )

    def score(size: tuple[int, int]) -> tuple[int, float]:
        w, h = size
        return abs(w * h - area), abs(w / h - aspect)

    return min(candidates, key=score)


def parse_size(text: str) -> tuple[int, int]:
    """A ``"960*540"`` or ``"960x540"`` size (width first) as ``(960, 540)``.

    Raises:
        ClipSizeError: text that is not two numbers, or a size the encoder cannot
            make (odd sides, under 16 or over 4096 pixels).
    """
    match = _SIZE.fullmatch(text)
    if not match:
        raise ClipSizeError(
            f"Size {text!r} is not WIDTHxHEIGHT or WIDTH*HEIGHT (e.g. '960*540')."
        )
    size = int(match.group(1)), int(match.group(2))
    check_clip_size(*size)
    return size
