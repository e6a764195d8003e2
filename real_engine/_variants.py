"""Ovi's model variants: what each one loads and what it returns.

Figures from Ovi's ``NAME_TO_MODEL_SPECS_MAP`` and ``download_weights.py`` (see
``docs/real-engine.md``); kept as data so the checks and the stand-in agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..contracts import did_you_mean

__all__ = [
    "FP8_CHECKPOINT",
    "OVI_SAMPLE_RATE",
    "VARIANTS",
    "OviVariant",
    "unknown_variant_message",
]

OVI_SAMPLE_RATE = 16_000
"""Ovi's audio: mono float32 at 16 kHz."""


@dataclass(frozen=True)
class OviVariant:
    name: str
    checkpoint: str
    """The fusion checkpoint, relative to the checkpoint folder."""
    side: int
    """The target area is ``side * side``; frame sides are multiples of 32."""
    frames: int
    audio_samples: int
    fps: int = 24
    """Ovi's frame rate; the MP4 is written at it."""

    @property
    def duration_s(self) -> float:
        """How long its clips are: 5.04 s for the 5 s variants, 10.04 s for 10 s.

        Example:
            >>> VARIANTS["960x960_10s"].duration_s
            10.041666666666666
        """
        return self.frames / self.fps


VARIANTS: dict[str, OviVariant] = {
    v.name: v
    for v in (
        OviVariant("720x720_5s", "Ovi/model.safetensors", 720, 121, 80_384),
        OviVariant("960x960_5s", "Ovi/model_960x960.safetensors", 960, 121, 80_384),
        OviVariant(
            "960x960_10s", "Ovi/model_960x960_10s.safetensors", 960, 241, 160_768
        ),
    )
}

FP8_CHECKPOINT = "Ovi/model_fp8_e4m3fn.safetensors"
"""fp8 weights: a separate download, and only for ``720x720_5s`` (Ovi asserts it)."""


def unknown_variant_message(name: str) -> str:
    close = did_you_mean(name, VARIANTS)
    hint = f" Did you mean {close!r}?" if close else ""
    return (
        f"unknown Ovi variant {name!r}.{hint} Expected one of {', '.join(VARIANTS)} "
        "(--ovi-variant / WAVESPEED_MOCK_OVI_VARIANT)"
    )
