"""Ovi's arrays as what the clip writer takes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..mock_server.media import PlanesToI420

__all__ = ["check_clip", "video_frames", "video_i420_frames"]


def check_clip(video: object, audio: object) -> str | None:
    """Why ``(video, audio)`` is not an Ovi clip, or None if it is one."""
    if not isinstance(video, np.ndarray) or video.ndim != 4 or video.shape[0] != 3:
        return (
            f"video of {_describe(video)}; expected a float array (3, frames, height, "
            "width)"
        )
    if min(video.shape) == 0:
        return f"an empty video of shape {video.shape}"
    if not isinstance(audio, np.ndarray) or audio.ndim != 1 or audio.size == 0:
        return f"audio of {_describe(audio)}; expected a 1-D float array"
    return None


def video_frames(video: np.ndarray) -> Iterator[np.ndarray]:
    """Frames of a (3, F, H, W) video in [-1, 1] as uint8 (H, W, 3), one at a time.

    Streams: one frame is converted at a time, never a second copy of the clip.
    Values outside [-1, 1] are clipped; -1 maps to 0, 0 to 128 and 1 to 255.
    """
    _, frames, height, width = video.shape
    # Work on whole contiguous planes, then interleave bytes: about 3x faster than
    # converting through a transposed float view (strided float access is slow).
    work = np.empty((3, height, width), dtype=np.float32)
    planes = np.empty((3, height, width), dtype=np.uint8)
    for index in range(frames):
        # (x + 1) * 127.5, rounded: x * 127.5 + 128 then truncated.
        np.multiply(video[:, index], 127.5, out=work, casting="same_kind")
        work += 128.0
        np.clip(work, 0.0, 255.0, out=work)
        np.copyto(planes, work, casting="unsafe")
        # A fresh array per frame: a consumer may keep frames.
        out = np.empty((height, width, 3), dtype=np.uint8)
        for channel in range(3):
            out[..., channel] = planes[channel]
        yield out


def video_i420_frames(video: np.ndarray) -> Iterator[np.ndarray]:
    """Frames of a (3, F, H, W) video in [-1, 1] as I420, one at a time.

    What the worker writes: ``write_clip(..., pixel_format="yuv420p")`` then takes
    them as they are, so neither an RGB interleave nor ffmpeg's own conversion is
    paid per frame. The levels are those of :func:`video_frames` put through
    BT.601, to within one. Height and width must be even (Ovi's always are).
    """
    _, frames, height, width = video.shape
    convert = PlanesToI420(height, width, scale=127.5, offset=127.5)
    for index in range(frames):
        yield convert(video[:, index])


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"shape {value.shape} and dtype {value.dtype}"
    return f"type {type(value).__name__}"
