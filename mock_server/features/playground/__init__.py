"""The playground: a page served by the mock to submit, watch, play and inspect."""

from __future__ import annotations

from .inbox import DeliveryVerifier, WebhookInbox
from .page import PAGE_PATHS, PLAYGROUND_PREFIX, page_headers
from .routes import playground_routes

__all__ = [
    "PAGE_PATHS",
    "PLAYGROUND_PREFIX",
    "DeliveryVerifier",
    "WebhookInbox",
    "page_headers",
    "playground_routes",
]
