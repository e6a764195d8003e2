"""The mock WaveSpeedAI server: app, lifecycle, engines, media.

Light to import: the engine interface is loaded at once (the real engine needs
it); the app, the server and the helpers load on first use.

Example:
    >>> from wavespeed_mock.mock_server import LiveServer, Settings
    >>> with LiveServer(Settings(port=0, profile="instant")) as server:
    ...     print(server.url)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core.engine import (
    CachedRenderer,
    Engine,
    EngineError,
    EngineOption,
    RenderFailed,
    RenderJob,
    RenderResult,
    UnknownEngineError,
    available_engines,
    load_engine,
    load_engine_class,
)
from .settings import Settings, SettingsError

if TYPE_CHECKING:
    from .assembly import Features, MockServer, build_server
    from .core.clock import Clock, RealClock, ServerClock, VirtualClock
    from .core.components import SubmitRequest
    from .core.lifecycle import status_at
    from .core.prediction import Prediction
    from .core.profiles import TimingProfile, parse_profile
    from .core.service import MockService, Submission
    from .errors import ApiError
    from .features.webhooks import (
        InvalidSignature,
        MalformedWebhook,
        StaleTimestamp,
        WebhookVerificationError,
        sign_webhook,
        verify_webhook,
    )
    from .http.app import create_app
    from .http.live import LiveServer
    from .synthetic_engine import SyntheticEngine

_LAZY = {
    "ApiError": "errors",
    "Clock": "core.clock",
    "Features": "assembly",
    "InvalidSignature": "features.webhooks",
    "LiveServer": "http.live",
    "MalformedWebhook": "features.webhooks",
    "MockServer": "assembly",
    "MockService": "core.service",
    "Prediction": "core.prediction",
    "RealClock": "core.clock",
    "ServerClock": "core.clock",
    "StaleTimestamp": "features.webhooks",
    "SubmitRequest": "core.components",
    "Submission": "core.service",
    "SyntheticEngine": "synthetic_engine",
    "TimingProfile": "core.profiles",
    "VirtualClock": "core.clock",
    "WebhookVerificationError": "features.webhooks",
    "build_server": "assembly",
    "create_app": "http.app",
    "parse_profile": "core.profiles",
    "sign_webhook": "features.webhooks",
    "status_at": "core.lifecycle",
    "verify_webhook": "features.webhooks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ApiError",
    "CachedRenderer",
    "Clock",
    "Engine",
    "EngineError",
    "EngineOption",
    "Features",
    "InvalidSignature",
    "LiveServer",
    "MalformedWebhook",
    "MockServer",
    "MockService",
    "Prediction",
    "RealClock",
    "RenderFailed",
    "RenderJob",
    "RenderResult",
    "ServerClock",
    "Settings",
    "SettingsError",
    "StaleTimestamp",
    "Submission",
    "SubmitRequest",
    "SyntheticEngine",
    "TimingProfile",
    "UnknownEngineError",
    "VirtualClock",
    "WebhookVerificationError",
    "available_engines",
    "build_server",
    "create_app",
    "load_engine",
    "load_engine_class",
    "parse_profile",
    "sign_webhook",
    "status_at",
    "verify_webhook",
]
