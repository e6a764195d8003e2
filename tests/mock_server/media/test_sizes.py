"""The output size rules."""

from __future__ import annotations

import pytest
from wavespeed_mock.mock_server.media import (
    ClipSizeError,
    output_size_for_image,
    parse_size,
)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ((512, 512), (704, 704)),
        ((720, 720), (704, 704)),
        ((1024, 1024), (704, 704)),
        ((1920, 1080), (960, 544)),  # 16:9 landscape
        ((1280, 720), (960, 544)),
        ((1080, 1920), (544, 960)),  # 9:16 portrait
        ((1024, 768), (832, 608)),  # 4:3 landscape
        ((768, 1024), (608, 832)),  # 3:4 portrait
    ],
)
def test_ovi_fixed_area_rule(image: tuple[int, int], expected: tuple[int, int]) -> None:
    assert output_size_for_image(*image) == expected


@pytest.mark.parametrize(
    "image", [(1, 1), (3000, 17), (17, 3000), (4000, 3000), (33, 65)]
)
def test_sides_are_multiples_of_32_near_the_area(image: tuple[int, int]) -> None:
    width, height = output_size_for_image(*image)
    assert width % 32 == 0
    assert height % 32 == 0
    assert width >= 32
    assert height >= 32


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("960*540", (960, 540)),
        ("540*960", (540, 960)),
        ("704x704", (704, 704)),
        (" 64 X 32 ", (64, 32)),
    ],
)
def test_parse_size(text: str, size: tuple[int, int]) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("960", "not WIDTHxHEIGHT"),
        ("a*b", "not WIDTHxHEIGHT"),
        ("961*540", "odd"),
        ("8*8", "out of range"),
        ("99999*2", "out of range"),
    ],
)
def test_parse_size_refuses(text: str, message: str) -> None:
    with pytest.raises(ClipSizeError, match=message):
        parse_size(text)
