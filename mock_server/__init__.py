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
from .settings import Settings, SettingsError

if TYPE_CHECKING:
    from .app import create_app
    from .clock import Clock, RealClock, VirtualClock
    from .errors import ApiError
    from .live import LiveServer
    from .prediction import Prediction, status_at
    from .profiles import TimingProfile, parse_profile
    from .service import MockService
    from .synthetic_engine import SyntheticEngine
    from .webhooks import (
        InvalidSignature,
        MalformedWebhook,
        StaleTimestamp,
        WebhookVerificationError,
        sign_webhook,
        verify_webhook,
    )

_LAZY = {
    "ApiError": "errors",
    "Clock": "clock",
    "InvalidSignature": "webhooks",
    "LiveServer": "live",
    "MalformedWebhook": "webhooks",
    "MockService": "service",
    "Prediction": "prediction",
    "RealClock": "clock",
    "StaleTimestamp": "webhooks",
    "SyntheticEngine": "synthetic_engine",
    "TimingProfile": "profiles",
    "VirtualClock": "clock",
    "WebhookVerificationError": "webhooks",
    "create_app": "app",
    "parse_profile": "profiles",
    "sign_webhook": "webhooks",
    "status_at": "prediction",
    "verify_webhook": "webhooks",
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
