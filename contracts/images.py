"""The one image rule: which images a request may carry, checked from the header.

The formats are the contract's (``x-image-formats`` on ``common.json#/$defs/
data_uri``: the formats the upload docs list for images); the pixel limit is the
caller's (``Settings.max_image_pixels`` on the server). Submit (``data:``
images), uploads, the image loader and both engines call :func:`probe_image`,
so what one accepts the others render.

Example:
    >>> probe_image(Path("cat.png").read_bytes(), max_pixels=40_000_000)
    ImageInfo(format='PNG', width=640, height=480)
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from .errors import WavespeedMockError
from .facts import image_formats

__all__ = ["ImageInfo", "TooManyPixelsError", "UnusableImageError", "probe_image"]


class UnusableImageError(WavespeedMockError, ValueError):
    """Bytes that are not an image in one of the contract's formats."""


class TooManyPixelsError(UnusableImageError):
    """An image with more pixels than the limit (a guard against decompression bombs)."""


@dataclass(frozen=True)
class ImageInfo:
    """What an image's header says."""

    format: str
    """Pillow's format name, one of :func:`~.facts.image_formats`."""
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def probe_image(data: bytes, *, max_pixels: int) -> ImageInfo:
    """Check ``data`` against the image rule without decoding its pixels.

    Raises:
        UnusableImageError: not an image Pillow can read, a format the contract
            does not list, or no pixels.
        TooManyPixelsError: more than ``max_pixels`` pixels.
    """
    from PIL import Image, UnidentifiedImageError

    formats = image_formats()
    listed = ", ".join(sorted(formats))
    if not data:
        raise UnusableImageError(f"the image is empty (0 bytes); send one of {listed}")
    try:
        with warnings.catch_warnings():
            # The limit below is the guard; Pillow's global one (a warning, then
            # an error at ~179 Mpx) must not leak out or pre-empt it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                kind = str(img.format)
    except Image.DecompressionBombError:
        raise TooManyPixelsError(
            f"the image has more pixels than the limit of {max_pixels:,}; "
            "send a smaller image"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UnusableImageError(
            f"the bytes ({len(data):,} starting {bytes(data[:8])!r}) are not a "
            f"readable image ({exc.__class__.__name__}); send one of {listed}"
        ) from None
    if kind not in formats:
        raise UnusableImageError(
            f"unsupported image format {kind!r}; send one of {listed}"
        )
    if width < 1 or height < 1:
        raise UnusableImageError(f"the image is {width}x{height}; it has no pixels")
    if width * height > max_pixels:
        raise TooManyPixelsError(
            f"the image has {width}x{height} = {width * height:,} pixels; "
            f"the limit is {max_pixels:,} (max_image_pixels); send a smaller image"
        )
    return ImageInfo(format=kind, width=width, height=height)
