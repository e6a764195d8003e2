"""The errors of the media layer.

Every one derives from :class:`MediaError` (itself a
:class:`~wavespeed_mock.contracts.errors.WavespeedMockError`) and from the standard
class that fits: bad input is a :class:`ValueError`, a failing encoder a
:class:`RuntimeError`.
"""

from __future__ import annotations

from ...contracts.errors import WavespeedMockError

__all__ = [
    "ClipArrayError",
    "ClipSizeError",
    "EncoderError",
    "EncoderTimeout",
    "ImageDecodeError",
    "ImageTooLargeError",
    "MediaError",
    "PromptError",
    "SeedError",
]


class MediaError(WavespeedMockError):
    """Root of the errors raised while making or writing a clip."""


class ClipArrayError(MediaError, ValueError):
    """Frames or audio handed to the writer that it cannot encode."""


class ClipSizeError(MediaError, ValueError):
    """An output size the encoder cannot make (odd, too small or too large)."""


class ImageDecodeError(MediaError, ValueError):
    """Bytes that are not an image of the contract's formats that Pillow can decode."""


class ImageTooLargeError(MediaError, ValueError):
    """An image with more pixels than allowed (a guard against decompression bombs)."""


class PromptError(MediaError, ValueError):
    """A prompt outside the contract's bounds."""


class SeedError(MediaError, ValueError):
    """A seed that is not a non-negative integer (resolve -1 before rendering)."""


class EncoderError(MediaError, RuntimeError):
    """ffmpeg failed; the message carries the end of its log."""


class EncoderTimeout(EncoderError):
    """ffmpeg ran past its time limit and was stopped."""
