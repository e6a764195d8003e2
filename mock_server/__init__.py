"""The mock WaveSpeedAI server: app, lifecycle, engines, media."""

from __future__ import annotations

from .engine import (
    Engine,
    EngineError,
    RenderFailed,
    RenderJob,
    RenderResult,
    UnknownEngineError,
    available_engines,
    load_engine_class,
)

__all__ = [
    "Engine",
    "EngineError",
    "RenderFailed",
    "RenderJob",
    "RenderResult",
    "UnknownEngineError",
    "available_engines",
    "load_engine_class",
]
