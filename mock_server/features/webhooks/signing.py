"""Signing and verifying webhook deliveries, as WaveSpeed signs them.

A delivery is the bare prediction object (compact JSON, no envelope), signed
with the API key's webhook secret [documented: D-WH, D-WHV]:

- ``webhook-id``: the prediction id [inferred: equal in the doc's only example];
- ``webhook-timestamp``: Unix seconds of the server's clock at the attempt;
- ``webhook-signature``: ``v3,<hex HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
  keyed with the secret minus its ``whsec_`` prefix as UTF-8 text (not base64
  decoded, unlike Standard Webhooks).

:func:`sign_webhook` and :func:`verify_webhook` are the public helpers a
receiver (or a test) uses.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from ....contracts.errors import WavespeedMockError

__all__ = [
    "SECRET_PREFIX",
    "SIGNATURE_VERSION",
    "TOLERANCE_S",
    "InvalidSignature",
    "MalformedWebhook",
    "StaleTimestamp",
    "WebhookVerificationError",
    "sign_webhook",
    "verify_webhook",
    "webhook_body",
]

SIGNATURE_VERSION = "v3"
SECRET_PREFIX = "whsec_"
TOLERANCE_S = 300
"""The doc's ``WebhookMaxAgeSeconds``."""
# The doc's signed example orders the keys so; input sits after model as in the
# doc's payload template. Keys the view has beyond these follow in its own order.
BODY_KEY_ORDER = (
    "id",
    "model",
    "input",
    "outputs",
    "urls",
    "has_nsfw_contents",
    "status",
    "created_at",
    "error",
    "executionTime",
    "timings",
)


# -- errors ------------------------------------------------------------------------


class WebhookVerificationError(WavespeedMockError, ValueError):
    """A webhook delivery that does not verify."""


class MalformedWebhook(WebhookVerificationError):
    """A header is missing or malformed, or the body is not a JSON object."""


class InvalidSignature(WebhookVerificationError):
    """The signature does not match the body, id and timestamp for this secret."""


class StaleTimestamp(WebhookVerificationError):
    """The timestamp is further than the tolerance from now (a replay, clock skew)."""


# -- signing and verifying ---------------------------------------------------------


def _key(secret: str) -> bytes:
    return secret.removeprefix(SECRET_PREFIX).encode()


def _signature(secret: str, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return hmac.new(_key(secret), signed, hashlib.sha256).hexdigest()


def sign_webhook(
    body: bytes, secret: str, *, webhook_id: str, timestamp: int
) -> dict[str, str]:
    """The headers of a delivery of ``body``, signed as WaveSpeed signs.

    Example:
        >>> headers = sign_webhook(b'{"id":"abc"}', "whsec_c2VjcmV0",
        ...                        webhook_id="abc", timestamp=1758798328)
        >>> headers["webhook-signature"][:3]
        'v3,'
    """
    signature = _signature(secret, webhook_id, int(timestamp), body)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": f"{SIGNATURE_VERSION},{signature}",
        "content-type": "application/json",
    }


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    tolerance_s: float = TOLERANCE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a delivery's signature and age; return its prediction object.

    ``headers`` may be any mapping (header names are matched case-insensitively);
    ``body`` must be the raw bytes as received, before any JSON parsing.

    Example:
        >>> payload = verify_webhook(request.headers, await request.body(), secret)
        >>> payload["status"]
        'completed'

    Raises:
        MalformedWebhook: a ``webhook-*`` header is missing or malformed, or the
            body is not a JSON object.
        InvalidSignature: the signature does not match.
        StaleTimestamp: the timestamp is more than ``tolerance_s`` from ``now``
            (the wall clock by default).
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    missing = [
        name
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        if not lowered.get(name)
    ]
    if missing:
        raise MalformedWebhook(
            f"missing header(s) {', '.join(missing)}; a WaveSpeed delivery carries "
            "webhook-id, webhook-timestamp and webhook-signature"
        )
    webhook_id = lowered["webhook-id"]
    raw_timestamp = lowered["webhook-timestamp"].strip()
    if not raw_timestamp.isdigit():
        raise MalformedWebhook(
            f"webhook-timestamp {raw_timestamp!r} is not Unix seconds (digits only)"
        )
    parts = lowered["webhook-signature"].strip().split(",")
    if len(parts) != 2 or parts[0] != SIGNATURE_VERSION:
        raise MalformedWebhook(
            f"webhook-signature {lowered['webhook-signature']!r} is not "
            f"'{SIGNATURE_VERSION},<hex>'"
        )
    expected = _signature(secret, webhook_id, raw_timestamp, body)
    if not hmac.compare_digest(expected, parts[1].strip().lower()):
        raise InvalidSignature(
            f"webhook-signature does not match the body for webhook-id {webhook_id!r}; "
            "check the secret (GET /api/v3/webhook/secret) and verify the raw body"
        )
    moment = time.time() if now is None else now
    age = moment - int(raw_timestamp)
    if abs(age) > tolerance_s:
        raise StaleTimestamp(
            f"webhook-timestamp {raw_timestamp} is {abs(age):.0f} s "
            f"{'old' if age > 0 else 'ahead'}; the tolerance is {tolerance_s:g} s"
        )
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedWebhook(f"the body is not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise MalformedWebhook(
            f"the body is a JSON {type(payload).__name__}, not an object"
        )
    return payload


def webhook_body(view: Mapping[str, Any]) -> bytes:
    """The compact JSON posted for a prediction view, keys in the doc's order."""
    ordered = {k: view[k] for k in BODY_KEY_ORDER if k in view}
    ordered.update((k, v) for k, v in view.items() if k not in ordered)
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
