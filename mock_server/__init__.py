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
    Engine,
    EngineError,
    RenderFailed,
    RenderJob,
    RenderResult,
    UnknownEngineError,
    available_engines,
    load_engine_class,
)
from .settings import Settings, SettingsError

if TYPE_CHECKING:
    from .http.app import create_app
    from .core.clock import Clock, RealClock, VirtualClock
    from .errors import ApiError
    from .http.live import LiveServer
    from .core.prediction import Prediction, status_at
    from .core.profiles import TimingProfile, parse_profile
    from .core.service import MockService
    from .synthetic_engine import SyntheticEngine
    from .features.webhooks.delivery import (
        InvalidSignature,
        MalformedWebhook,
        StaleTimestamp,
        WebhookVerificationError,
        sign_webhook,
        verify_webhook,
    )

_LAZY = {
    "ApiError": "errors",
    "Clock": "core.clock",
    "InvalidSignature": "features.webhooks.delivery",
    "LiveServer": "http.live",
    "MalformedWebhook": "features.webhooks.delivery",
    "MockService": "core.service",
    "Prediction": "core.prediction",
    "RealClock": "core.clock",
    "StaleTimestamp": "features.webhooks.delivery",
    "SyntheticEngine": "synthetic_engine",
    "TimingProfile": "core.profiles",
    "VirtualClock": "core.clock",
    "WebhookVerificationError": "features.webhooks.delivery",
    "create_app": "http.app",
    "parse_profile": "core.profiles",
    "sign_webhook": "features.webhooks.delivery",
    "status_at": "core.prediction",
    "verify_webhook": "features.webhooks.delivery",
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
    "Clock",
    "Engine",
    "EngineError",
    "InvalidSignature",
    "LiveServer",
    "MalformedWebhook",
    "MockService",
    "Prediction",
    "RealClock",
    "RenderFailed",
    "RenderJob",
    "RenderResult",
    "Settings",
    "SettingsError",
    "StaleTimestamp",
    "SyntheticEngine",
    "TimingProfile",
    "UnknownEngineError",
    "VirtualClock",
    "WebhookVerificationError",
    "available_engines",
    "create_app",
    "load_engine_class",
    "parse_profile",
    "sign_webhook",
    "status_at",
    "verify_webhook",
]
