"""Decoding input images: formats, orientation and bounds."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from wavespeed_mock.contracts import image_formats
from wavespeed_mock.mock_server.media import ImageDecodeError, ImageTooLargeError
from wavespeed_mock.mock_server.media.image import decode_image, fit_image

from .conftest import make_picture


@pytest.mark.parametrize("fmt", sorted(image_formats()))
def test_every_format_of_the_contract_is_rendered(fmt: str) -> None:
    # What submit accepts (the contract's x-image-formats), the engine decodes.
    image = decode_image(make_picture(80, 40, fmt=fmt), max_pixels=10_000)
    assert image.mode == "RGB"
    assert image.size == (80, 40)


def test_alpha_is_dropped() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (10, 10), (200, 10, 10, 0)).save(buffer, "PNG")
    image = decode_image(buffer.getvalue(), max_pixels=100)
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (200, 10, 10)


def test_exif_orientation_is_honoured() -> None:
    stored = Image.new("RGB", (60, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 10, 20))  # red on the left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", exif=exif, quality=95)
    upright = decode_image(buffer.getvalue(), max_pixels=10_000)
    assert upright.size == (20, 60)
    top = np.asarray(upright)[2, 10]
    assert top[0] > 200 > top[2]  # the stored left edge is now on top


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` but holds almost nothing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def test_an_image_over_the_pixel_limit_is_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match=r"5000x5000 = 25,000,000 pixels"):
        decode_image(png_header(5000, 5000), max_pixels=1_000_000)


def test_a_decompression_bomb_is_refused() -> None:
    # Over Pillow's own hard limit: Pillow refuses it when opening.
    with pytest.raises(ImageTooLargeError):
        decode_image(png_header(30_000, 30_000), max_pixels=40_000_000)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"not an image at all", "not a readable image.*send one of BMP, GIF"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "not a readable image"),
        (make_picture(8, 8, fmt="PPM"), "unsupported image format 'PPM'"),
        (make_picture(64, 64)[:200], "truncated or corrupt"),
        (png_header(64, 64), "truncated or corrupt"),
    ],
    ids=["empty", "text", "gif", "ppm", "truncated", "no pixel data"],
)
def test_bytes_that_are_not_an_image_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ImageDecodeError, match=message):
        decode_image(data, max_pixels=40_000_000)


def test_fit_scales_and_centre_crops() -> None:
    wide = Image.new("RGB", (300, 100), (0, 255, 0))
    wide.paste((255, 0, 0), (0, 0, 100, 100))  # a red left third, cropped away
    fitted = fit_image(wide, (64, 64))
    assert fitted.shape == (64, 64, 3)
    assert fitted[:, :, 1].min() > 200
