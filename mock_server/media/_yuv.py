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

__all__ = ["PlanesToI420", "YuvCanvas", "rgb_to_i420"]

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


class PlanesToI420:
    """Planar float frames, ``(3, height, width)`` RGB, as I420 frames.

    For a model's output such as Ovi's: each value ``x`` stands for the RGB level
    ``x * scale + offset``, clipped to 0..255 (Ovi: ``scale = offset = 127.5`` for
    [-1, 1]). Converting here, straight from the float planes, spares the
    interleaving into RGB bytes and ffmpeg's own conversion of every frame (about a
    quarter of the encode's CPU, see the module's docstring); the result matches the
    RGB route to within one level. One call's buffers are reused by the next.
    """

    def __init__(self, height: int, width: int, *, scale: float, offset: float) -> None:
        if height % 2 or width % 2:
            raise ValueError(f"{width}x{height}: I420 needs an even width and height")
        self.height, self.width = height, width
        self._low = np.float32(-offset / scale)
        self._high = np.float32((255.0 - offset) / scale)
        # Level = coefficients . (x * scale + offset) + bias, folded into one
        # matrix product over the planes and one constant per output plane; +0.5
        # so that the cast (a truncation of values >= 0) rounds.
        matrix = np.stack([_Y, _U, _V])
        self._matrix = (matrix * np.float32(scale)).astype(np.float32)
        self._quarter = self._matrix[1:] * np.float32(0.25)  # chroma of 4-pixel sums
        bias = matrix.sum(axis=1) * np.float32(offset) + np.array(
            [16, 128, 128], np.float32
        )
        self._bias = (bias + np.float32(0.5)).astype(np.float32)
        self._clipped = np.empty((3, height, width), np.float32)
        self._rows = np.empty((3, height // 2, width), np.float32)
        self._means = np.empty((3, height // 2, width // 2), np.float32)
        self._luma = np.empty((height, width), np.float32)
        self._chroma = np.empty((2, height // 2, width // 2), np.float32)

    def __call__(self, planes: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
        """One frame, ``(3, height, width)``, as a new ``(height * 3 // 2, width)`` array."""
        h, w = self.height, self.width
        if planes.shape != (3, h, w):
            raise ValueError(f"planes of shape {planes.shape}; expected {(3, h, w)}")
        clipped = self._clipped
        np.clip(planes, self._low, self._high, out=clipped, casting="same_kind")
        # einsum, not matmul: matmul goes to BLAS, whose threads spin on the core
        # that ffmpeg needs (measured: the clip's write 0.64 s instead of 0.36 s).
        np.einsum(
            "k,kn->n",
            self._matrix[0],
            clipped.reshape(3, -1),
            out=self._luma.reshape(-1),
        )
        self._luma += self._bias[0]
        # Chroma from the 2x2 means of R, G and B (the conversion is linear, so
        # this equals the mean of the full-size chroma planes).
        np.add(clipped[:, 0::2], clipped[:, 1::2], out=self._rows)
        np.add(self._rows[:, :, 0::2], self._rows[:, :, 1::2], out=self._means)
        np.einsum(
            "ck,kn->cn",
            self._quarter,
            self._means.reshape(3, -1),
            out=self._chroma.reshape(2, -1),
        )
        self._chroma += self._bias[1:, None, None]
        frame = np.empty((h * 3 // 2, w), np.uint8)
        np.copyto(frame[:h], self._luma, casting="unsafe")
        np.copyto(frame[h:].reshape(2, h // 2, w // 2), self._chroma, casting="unsafe")
        return frame
