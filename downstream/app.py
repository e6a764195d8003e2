"""The downstream app's code under test: it makes a clip as the SDK's README shows."""

from __future__ import annotations

from typing import Any

import wavespeed

TEXT_TO_VIDEO = "character-ai/ovi/text-to-video"


def make_clip(prompt: str, *, seed: int = 1) -> str:
    """App code as the SDK's README shows it: the module-level ``wavespeed.run``."""
    output: dict[str, Any] = wavespeed.run(
        TEXT_TO_VIDEO, {"prompt": prompt, "seed": seed}
    )
    return str(output["outputs"][0])
