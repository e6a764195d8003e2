"""The media package's public surface is what ``__all__`` says."""

from __future__ import annotations

import types

import wavespeed_mock.mock_server.media as media


def test_all_names_exist() -> None:
    missing = [name for name in media.__all__ if not hasattr(media, name)]
    assert missing == []


def test_every_public_name_is_in_all() -> None:
    public = {
        name
        for name, value in vars(media).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public == set(media.__all__)


def test_the_promised_names_are_there() -> None:
    promised = {
        "write_clip",
        "render_clip",
        "output_size_for_image",
        "ClipCache",
        "MediaError",
        "parse_prompt_tags",
        "ClipInfo",
    }
    assert promised <= set(media.__all__)
