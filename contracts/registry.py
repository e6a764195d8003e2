"""The model registry: which models the API serves, their inputs, price and output.

The data lives in ``models.json``; this module only reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from ._resources import load_model_registry
from .errors import UnknownModelError
from .facts import did_you_mean

__all__ = ["ModelOutput", "ModelSpec", "get_model", "list_models"]


@dataclass(frozen=True)
class ModelOutput:
    """What one run of a model returns."""

    container: str
    duration_s: float
    fps: float
    frames: int
    has_audio: bool
    video_codec: str = ""
    audio_codec: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """One model the API serves."""

    id: str
    name: str
    description: str
    type: str
    input_schema: str
    price_usd: float
    unit_seconds: float
    minimum_seconds: float
    output: ModelOutput

    @property
    def path(self) -> str:
        """The submit path, ``/api/v3/<model id>``."""
        return f"/api/v3/{self.id}"

    @property
    def takes_image(self) -> bool:
        return self.type.startswith("image-to")

    def price_for(self, seconds: float | None = None) -> float:
        """The charge for a clip of ``seconds`` (the model's duration by default).

        Billed per started unit, never less than the minimum charge.
        """
        length = max(
            seconds if seconds is not None else self.output.duration_s,
            self.minimum_seconds,
        )
        units = math.ceil(round(length / self.unit_seconds, 9))
        return round(units * self.price_usd, 6)

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> ModelSpec:
        out = entry["output"]
        return cls(
            id=entry["id"],
            name=entry["name"],
            description=entry.get("description", ""),
            type=entry["type"],
            input_schema=entry["input_schema"],
            price_usd=float(entry["price_usd"]),
            unit_seconds=float(entry["billing"]["unit_seconds"]),
            minimum_seconds=float(entry["billing"]["minimum_seconds"]),
            output=ModelOutput(
                container=out["container"],
                duration_s=float(out["duration_s"]),
                fps=float(out["fps"]),
                frames=int(out["frames"]),
                has_audio=bool(out["has_audio"]),
                video_codec=out.get("video_codec", ""),
                audio_codec=out.get("audio_codec", ""),
            ),
        )


@cache
def _models_by_id() -> dict[str, ModelSpec]:
    entries = load_model_registry()["models"]
    return {entry["id"]: ModelSpec.from_entry(entry) for entry in entries}


def list_models() -> list[ModelSpec]:
    """Every registered model, in registry order."""
    return list(_models_by_id().values())


def get_model(model_id: str) -> ModelSpec:
    """The model with this id.

    Raises:
        UnknownModelError: naming the closest known id.
    """
    models = _models_by_id()
    try:
        return models[model_id]
    except KeyError:
        known = list(models)
        raise UnknownModelError(
            model_id, known, did_you_mean(model_id, known)
        ) from None
