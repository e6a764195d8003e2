"""Webhooks: signed deliveries of finished predictions, and the helpers to verify them."""

from __future__ import annotations

from .delivery import (
    MAX_RETRIES,
    WebhookDelivery,
    WebhookLog,
    WebhookSecrets,
    WebhookUrlCheck,
    check_webhook_url,
    loopback_only,
)
from .routes import webhook_routes
from .signing import (
    SIGNATURE_VERSION,
    TOLERANCE_S,
    InvalidSignature,
    MalformedWebhook,
    StaleTimestamp,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook,
    webhook_body,
)

__all__ = [
    "MAX_RETRIES",
    "SIGNATURE_VERSION",
    "TOLERANCE_S",
    "InvalidSignature",
    "MalformedWebhook",
    "StaleTimestamp",
    "WebhookDelivery",
    "WebhookLog",
    "WebhookSecrets",
    "WebhookUrlCheck",
    "WebhookVerificationError",
    "check_webhook_url",
    "loopback_only",
    "sign_webhook",
    "verify_webhook",
    "webhook_body",
    "webhook_routes",
]
