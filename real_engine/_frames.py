"""Ovi's arrays as what the clip writer takes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["check_clip", "video_frames"]


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
    work = np.empty((height, width, 3), dtype=np.float32)
    planar = work.transpose(2, 0, 1)  # a (3, H, W) view to copy the planes into
    for index in range(frames):
        np.copyto(planar, video[:, index], casting="same_kind")
        # (x + 1) * 127.5, rounded: x * 127.5 + 128 then truncated.
        np.multiply(work, 127.5, out=work)
        work += 128.0
        np.clip(work, 0.0, 255.0, out=work)
        # A fresh array per frame: a consumer may keep frames (it costs nothing
        # measurable next to the conversion).
        out = np.empty((height, width, 3), dtype=np.uint8)
        np.copyto(out, work, casting="unsafe")
        yield out


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"shape {value.shape} and dtype {value.dtype}"
    return f"type {type(value).__name__}"
