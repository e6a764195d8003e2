"""Decoding the input image, within bounds, and fitting it to the output size."""

from __future__ import annotations

import io
import warnings

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from ...contracts import image_formats
from ...contracts.images import TooManyPixelsError, UnusableImageError, probe_image
from .errors import ImageDecodeError, ImageTooLargeError

__all__ = ["decode_image", "fit_image"]


def decode_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """The first frame of an image in one of the contract's formats, as RGB, upright.

    The contract's image rule (:func:`~wavespeed_mock.contracts.images.probe_image`:
    the formats of ``x-image-formats``, the pixel count) is checked from the
    header, before any pixel is decoded, so a decompression bomb costs nothing.
    EXIF orientation is applied; alpha dropped (as Ovi's own loader does).

    Raises:
        ImageDecodeError: bytes that are not an image in an accepted format.
        ImageTooLargeError: an image with more than ``max_pixels`` pixels.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageDecodeError(
            f"image is a {type(data).__name__}; expected the encoded bytes."
        )
    try:
        info = probe_image(bytes(data), max_pixels=max_pixels)
    except TooManyPixelsError as exc:
        raise ImageTooLargeError(f"image: {exc}") from None
    except UnusableImageError as exc:
        raise ImageDecodeError(f"image: {exc}") from None
    with warnings.catch_warnings():
        # probe_image applied our own limit; Pillow's global one must not leak out.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=sorted(image_formats()))
            image.load()
            upright = ImageOps.exif_transpose(image)
            rgb = upright.convert("RGB")
        except (
            UnidentifiedImageError,
            OSError,
            ValueError,
            SyntaxError,
            Image.DecompressionBombError,
        ) as exc:
            raise ImageDecodeError(
                f"image ({info.format} {info.width}x{info.height}) is truncated or "
                f"corrupt: {exc}"
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
