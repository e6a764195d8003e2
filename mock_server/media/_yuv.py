"""RGB to I420 (yuv420p, BT.601, TV range), done once per canvas instead of per frame.

A pan is a moving crop of one canvas, so the canvas is converted once and every
frame is three plane crops: ffmpeg's own conversion of each frame (swscale) was a
quarter of the encode's CPU. Chroma is the 2x2 mean; a crop at an odd offset needs
chroma sampled on the other grid, so each of the four offset parities gets its own
chroma planes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["YuvCanvas", "rgb_to_i420"]

# BT.601 in TV range (Y 16-235, Cb/Cr 16-240), the matrix swscale uses by default
# and the one the writer tags (smpte170m).
_Y = np.array([65.481, 128.553, 24.966], np.float32) / np.float32(255)
_U = np.array([-37.797, -74.203, 112.0], np.float32) / np.float32(255)
_V = np.array([112.0, -93.786, -18.214], np.float32) / np.float32(255)

Plane = npt.NDArray[np.float32]


def _planes(rgb: npt.NDArray[np.uint8]) -> tuple[Plane, Plane, Plane]:
    pixels = rgb.astype(np.float32)
    y: Plane = pixels @ _Y + np.float32(16)
    u: Plane = pixels @ _U + np.float32(128)
    v: Plane = pixels @ _V + np.float32(128)
    return y, u, v


def _to_u8(plane: Plane) -> npt.NDArray[np.uint8]:
    return np.clip(np.rint(plane), 0, 255).astype(np.uint8)


def _box(plane: Plane) -> Plane:
    """The mean of the 2x2 block whose top-left corner is each position."""
    total = plane[:-1, :-1] + plane[1:, :-1]
    total += plane[:-1, 1:]
    total += plane[1:, 1:]
    total *= np.float32(0.25)
    return total


def rgb_to_i420(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """An even-sized RGB image as one I420 frame, shape ``(h * 3 // 2, w)``."""
    y, u, v = _planes(rgb)
    h, w = y.shape
    frame = np.empty((h * 3 // 2, w), np.uint8)
    frame[:h] = _to_u8(y)
    chroma = frame[h:].reshape(2, h // 2, w // 2)
    chroma[0] = _to_u8(_box(u)[::2, ::2])
    chroma[1] = _to_u8(_box(v)[::2, ::2])
    return frame


class YuvCanvas:
    """An RGB canvas converted once, cropped to I420 frames at any offset."""

    def __init__(self, rgb: npt.NDArray[np.uint8]) -> None:
        y, u, v = _planes(rgb)
        self.luma = _to_u8(y)
        # The 2x2 mean at every position; each parity's chroma is every other one.
        u_box, v_box = _to_u8(_box(u)), _to_u8(_box(v))
        self.chroma = {
            (py, px): (
                np.ascontiguousarray(u_box[py::2, px::2]),
                np.ascontiguousarray(v_box[py::2, px::2]),
            )
            for py in (0, 1)
            for px in (0, 1)
        }

    def crop(self, x0: int, y0: int, width: int, height: int) -> npt.NDArray[np.uint8]:
        """The I420 frame of ``width`` x ``height`` (even) whose corner is (x0, y0)."""
        frame = np.empty((height * 3 // 2, width), np.uint8)
        frame[:height] = self.luma[y0 : y0 + height, x0 : x0 + width]
        u, v = self.chroma[(y0 % 2, x0 % 2)]
        cy, cx, ch, cw = y0 // 2, x0 // 2, height // 2, width // 2
        chroma = frame[height:].reshape(2, ch, cw)
        chroma[0] = u[cy : cy + ch, cx : cx + cw]
        chroma[1] = v[cy : cy + ch, cx : cx + cw]
        return frame

    @staticmethod
    def paste(
        frame: npt.NDArray[np.uint8], rgb: npt.NDArray[np.uint8], x0: int, y0: int
    ) -> None:
        """Write an even-sized RGB patch into an I420 ``frame`` at even (x0, y0)."""
        height = frame.shape[0] * 2 // 3
        width = frame.shape[1]
        patch = rgb_to_i420(rgb)
        ph, pw = rgb.shape[:2]
        frame[y0 : y0 + ph, x0 : x0 + pw] = patch[:ph]
        chroma = frame[height:].reshape(2, height // 2, width // 2)
        patch_chroma = patch[ph:].reshape(2, ph // 2, pw // 2)
        chroma[:, y0 // 2 : (y0 + ph) // 2, x0 // 2 : (x0 + pw) // 2] = patch_chroma
