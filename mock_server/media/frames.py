"""The synthetic frames: the input image (or a drawn scene), then a slow pan.

Frame 0 is the fitted image, untouched. The rest are crops of a canvas a little
larger than the frame, moving along a straight line whose direction and length
come from the seed, with the badge in a corner. A pan was chosen over a zoom
because a crop costs ~0.1 ms a frame and x264 codes a pure translation cheaply,
where a bilinear zoom costs ~7 ms a frame here (PIL) and would double the render.
The canvas around an image is the image mirrored at its edges.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._badge import badge_corner, badge_scale, draw_badge
from ._yuv import YuvCanvas

__all__ = ["Motion", "choose_motion", "draw_scene", "iter_frames", "pad_canvas"]


@dataclass(frozen=True)
class Motion:
    """A pan: the canvas margin and the offset of the last frame from the first."""

    margin: int
    dx: int
    dy: int

    def offset(self, index: int, count: int) -> tuple[int, int]:
        if count <= 1:
            return 0, 0
        # Linear, not eased: the steps stay even, so diffs between frames do too.
        t = index / (count - 1)
        return round(self.dx * t), round(self.dy * t)


def choose_motion(rng: np.random.Generator, width: int, height: int) -> Motion:
    """A pan of 5-8 % of the short side, in a direction drawn from ``rng``."""
    margin = max(2, round(min(width, height) * 0.08))
    length = margin * rng.uniform(0.7, 1.0)
    angle = rng.uniform(0.0, 2 * math.pi)
    return Motion(
        margin=margin,
        dx=round(length * math.cos(angle)),
        dy=round(length * math.sin(angle)),
    )


def pad_canvas(base: npt.NDArray[np.uint8], margin: int) -> npt.NDArray[np.uint8]:
    """``base`` with ``margin`` pixels on every side, each edge's own colour
    carried out (a mirrored border showed as a seam when the pan reached it)."""
    margin = min(margin, base.shape[0] - 1, base.shape[1] - 1)
    return np.pad(base, ((margin, margin), (margin, margin), (0, 0)), mode="edge")


def iter_frames(
    canvas: npt.NDArray[np.uint8],
    width: int,
    height: int,
    motion: Motion,
    count: int,
    label: str = "",
) -> Iterator[npt.NDArray[np.uint8]]:
    """``count`` I420 frames of ``width`` x ``height`` panned across ``canvas``.

    Frame 0 is the centre of the canvas, untouched (for image-to-video, the fitted
    image itself); the rest carry the badge. Each frame is a new
    ``(height * 3 // 2, width)`` array for ``write_clip(..., pixel_format="yuv420p")``.
    ``label`` (the seed) is drawn after the badge's word.
    """
    margin = (canvas.shape[0] - height) // 2
    yuv = YuvCanvas(canvas)
    scale = badge_scale(width, height)
    corner_h, corner_w = badge_corner(scale, label)
    for index in range(count):
        dx, dy = motion.offset(index, count)
        x0 = min(max(margin + dx, 0), canvas.shape[1] - width)
        y0 = min(max(margin + dy, 0), canvas.shape[0] - height)
        frame = yuv.crop(x0, y0, width, height)
        if index > 0 and corner_h <= height and corner_w <= width:
            # The badge is drawn in RGB on the corner it covers, then converted.
            cy, cx = y0 + height - corner_h, x0 + width - corner_w
            corner = canvas[cy : cy + corner_h, cx : cx + corner_w].copy()
            draw_badge(corner, index, scale=scale, label=label)
            yuv.paste(frame, corner, width - corner_w, height - corner_h)
        yield frame


def draw_scene(
    rng: np.random.Generator, width: int, height: int
) -> npt.NDArray[np.uint8]:
    """A text-to-video stand-in: a soft two-colour gradient with glowing discs.

    Drawn at a quarter of the size and upscaled, so it costs a few milliseconds.
    """
    from PIL import Image

    small_w, small_h = max(8, width // 4), max(8, height // 4)
    y, x = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    x /= small_w
    y /= small_h
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (x - 0.5) * math.cos(angle) + (y - 0.5) * math.sin(angle) + 0.5
    ramp = np.clip(ramp, 0.0, 1.0)[..., None]
    top, bottom = rng.uniform(0.1, 0.9, size=(2, 3)).astype(np.float32)
    picture = top * (1 - ramp) + bottom * ramp
    for _ in range(int(rng.integers(3, 7))):
        cx, cy = rng.uniform(0.1, 0.9, size=2)
        radius = rng.uniform(0.06, 0.22)
        colour = rng.uniform(0.0, 1.0, size=3).astype(np.float32)
        aspect = small_w / small_h
        d2 = ((x - cx) * aspect) ** 2 + (y - cy) ** 2
        glow = np.exp(-d2 / (2 * radius * radius))[..., None]
        picture = picture * (1 - 0.8 * glow) + colour * 0.8 * glow
    # A fine grain so the pan is visible to frame-diffing code even on flat areas.
    grain = rng.normal(0.0, 0.02, size=picture.shape[:2]).astype(np.float32)[..., None]
    small = np.clip((picture + grain) * 255.0, 0, 255).astype(np.uint8)
    big = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(big, dtype=np.uint8)
