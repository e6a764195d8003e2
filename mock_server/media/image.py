"""Decoding the input image, within bounds, and fitting it to the output size."""

from __future__ import annotations

import io
import warnings

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageDecodeError, ImageTooLargeError

__all__ = ["ACCEPTED_FORMATS", "decode_image", "fit_image"]

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")


def decode_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """The first frame of a PNG, JPEG or WebP image as RGB, upright.

    The pixel count is checked from the header, before any pixel is decoded, so a
    decompression bomb costs nothing. EXIF orientation is applied; alpha dropped
    (as Ovi's own loader does).

    Raises:
        ImageDecodeError: bytes that are not an image in an accepted format.
        ImageTooLargeError: an image with more than ``max_pixels`` pixels.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageDecodeError(
            f"image is a {type(data).__name__}; expected the encoded bytes."
        )
    if not data:
        raise ImageDecodeError("image is empty (0 bytes); expected PNG, JPEG or WebP.")
    with warnings.catch_warnings():
        # Our own limit, checked below, is the guard; Pillow's global one
        # (a warning, then an error, at ~89 and ~179 Mpx) must not leak out.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        except Image.DecompressionBombError:
            raise ImageTooLargeError(
                f"image has more than {max_pixels:,} pixels; send a smaller image."
            ) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise ImageDecodeError(
                f"image ({len(data):,} bytes starting {bytes(data[:8])!r}) is not a "
                "PNG, JPEG or WebP image Pillow can read."
            ) from exc
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLargeError(
                f"image is {width}x{height} = {width * height:,} pixels; the limit is "
                f"{max_pixels:,} (max_image_pixels). Send a smaller image."
            )
        if width < 1 or height < 1:
            raise ImageDecodeError(f"image is {width}x{height}; it has no pixels.")
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
            rgb = upright.convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise ImageDecodeError(
                f"image ({image.format} {width}x{height}) is truncated or corrupt: "
                f"{exc}"
            ) from exc
    return rgb


def fit_image(image: Image.Image, size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """Scale ``image`` to cover ``size`` (width, height) and crop the centre.

    One bicubic resample from the crop box straight to the output size.
    """
    width, height = size
    src_w, src_h = image.size
    target = width / height
    if src_w / src_h > target:
        crop_w, crop_h = src_h * target, float(src_h)
    else:
        crop_w, crop_h = float(src_w), src_w / target
    left = (src_w - crop_w) / 2
    top = (src_h - crop_h) / 2
    fitted = image.resize(
        (width, height),
        Image.Resampling.BICUBIC,
        box=(left, top, left + crop_w, top + crop_h),
        reducing_gap=3.0,
    )
    return np.asarray(fitted, dtype=np.uint8)
