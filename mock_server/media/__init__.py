"""Synthetic media: the MP4 writer and the synthetic clip renderer.

Two layers: :func:`write_clip` turns frames and audio into an MP4 (the real engine
reuses it); :func:`render_clip` makes Ovi-shaped synthetic clips from an image, a
prompt and a seed and writes them with it. :class:`ClipCache` keeps rendered clips.
See ``docs/media.md``.
"""

from __future__ import annotations

from ._ffmpeg import ffmpeg_exe, ffmpeg_version
from ._yuv import PlanesToI420
from .cache import ClipCache
from .errors import (
    ClipArrayError,
    ClipSizeError,
    EncoderError,
    EncoderTimeout,
    ImageDecodeError,
    ImageTooLargeError,
    MediaError,
    PromptError,
    SeedError,
)
from .prompt_tags import PromptTags, check_prompt, parse_prompt_tags
from .render import CLIP_FPS, CLIP_FRAMES, ClipInfo, render_clip
from .sizes import DEFAULT_TEXT_TO_VIDEO_SIZE, output_size_for_image, parse_size
from .writer import (
    AUDIO_CHANNELS,
    AUDIO_SAMPLE_RATE,
    ENCODER_SETTINGS,
    X264_PRESET,
    write_clip,
)

__all__ = [
    "AUDIO_CHANNELS",
    "AUDIO_SAMPLE_RATE",
    "CLIP_FPS",
    "CLIP_FRAMES",
    "DEFAULT_TEXT_TO_VIDEO_SIZE",
    "ENCODER_SETTINGS",
    "X264_PRESET",
    "ClipArrayError",
    "ClipCache",
    "ClipInfo",
    "ClipSizeError",
    "EncoderError",
    "EncoderTimeout",
    "ImageDecodeError",
    "ImageTooLargeError",
    "MediaError",
    "PlanesToI420",
    "PromptError",
    "PromptTags",
    "SeedError",
    "check_prompt",
    "ffmpeg_exe",
    "ffmpeg_version",
    "output_size_for_image",
    "parse_prompt_tags",
    "parse_size",
    "render_clip",
    "write_clip",
]
