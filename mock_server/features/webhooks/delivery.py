"""Webhooks: signed deliveries of finished predictions, as WaveSpeed sends them.

A submit with ``?webhook=URL`` makes the server POST the bare prediction object
(compact JSON, no envelope) to that URL once the task ends, signed with the API
key's webhook secret [documented: D-WH, D-WHV]:

- ``webhook-id``: the prediction id [inferred: equal in the doc's only example];
- ``webhook-timestamp``: Unix seconds of the server's clock at the attempt;
- ``webhook-signature``: ``v3,<hex HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
  keyed with the secret minus its ``whsec_`` prefix as UTF-8 text (not base64
  decoded, unlike Standard Webhooks).

A failed attempt (no answer, a timeout, any non-2xx, redirects included) is
retried up to 3 times with exponential backoff, waiting on the server's clock so
that a virtual clock drives the retries. Every attempt is logged.

:func:`sign_webhook` and :func:`verify_webhook` are the public helpers a
receiver (or a test) uses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ....contracts.errors import WavespeedMockError
from ...core.prediction import TERMINAL_STATUSES
from ...errors import ApiError
from ...http.auth import require_api_key
from ...http.responses import envelope

if TYPE_CHECKING:
    from ...core.prediction import Prediction
    from ...core.service import MockService
    from ...core.store import PredictionStore

__all__ = [
    "MAX_RETRIES",
    "SIGNATURE_VERSION",
    "TOLERANCE_S",
    "InvalidSignature",
    "MalformedWebhook",
    "StaleTimestamp",
    "WebhookLog",
    "WebhookSecrets",
    "WebhookVerificationError",
    "check_webhook_url",
    "install",
    "sign_webhook",
    "verify_webhook",
    "webhook_body",
]

log = logging.getLogger("wavespeed_mock.server")

SIGNATURE_VERSION = "v3"
SECRET_PREFIX = "whsec_"
TOLERANCE_S = 300
"""The doc's ``WebhookMaxAgeSeconds``."""
MAX_RETRIES = 3
"""Retries after the first attempt [documented: "up to 3 times"]."""
DEFAULT_RETRY_BASE_S = 1.0
"""First backoff delay, then doubled (1, 2, 4 s); real schedule unknown. [inferred]"""
DEFAULT_TIMEOUT_S = 10.0
"""Per-attempt HTTP timeout, real time. [inferred]"""
LOOPBACK_NAMES = frozenset({"localhost"})
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


# -- secrets -----------------------------------------------------------------------


class WebhookSecrets:
    """One webhook secret per API key, kept in the store so it survives restarts.

    One per key, not one per account: the mock has no accounts, and a third-party
    note says "each API key has its own webhook secret". [inferred]
    """

    def __init__(self, store: PredictionStore) -> None:
        self._store = store
        self._lock = threading.Lock()

    @staticmethod
    def _kv_key(api_key: str) -> str:
        return "webhook_secret:" + hashlib.sha256(api_key.encode()).hexdigest()[:32]

    def secret_for(self, api_key: str) -> str:
        """The key's secret, made on first use: ``whsec_`` + base64 of 32 bytes."""
        with self._lock:
            found = self._store.get_value(self._kv_key(api_key))
            if found is not None:
                return found
            secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
            self._store.set_value(self._kv_key(api_key), secret)
            return secret


# -- the attempt log ---------------------------------------------------------------


class WebhookLog:
    """Delivery attempts: ``{prediction_id, url, attempt, status_code, error, at}``

    ``status_code`` is the receiver's HTTP status (None when there was no answer);
    ``error`` says what went wrong (None for a 2xx); ``at`` is the server clock's
    time of the attempt. Kept in memory only.
    """

    def __init__(self) -> None:
        self._attempts: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._attempts.append(entry)

    def attempts(self, prediction_id: str | None = None) -> list[dict[str, Any]]:
        """A copy of the attempts, oldest first, optionally for one prediction."""
        with self._lock:
            return [
                dict(a)
                for a in self._attempts
                if prediction_id is None or a["prediction_id"] == prediction_id
            ]

    def clear(self) -> int:
        with self._lock:
            count = len(self._attempts)
            self._attempts.clear()
            return count

    def __len__(self) -> int:
        return len(self._attempts)


# -- which URLs may receive deliveries ---------------------------------------------


def _host_allowed(host: str, allow: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    if host in LOOPBACK_NAMES:
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    allowed = {h.lower().rstrip(".").strip("[]") for h in allow}
    return "*" in allowed or host in allowed


def check_webhook_url(url: str, allow_hosts: tuple[str, ...] = ()) -> None:
    """Refuse a webhook URL the mock will not deliver to.

    Loopback only (127.0.0.0/8, ::1, localhost) unless ``allow_hosts`` names the
    host (``*`` allows any): the mock must not be made to send requests to hosts a
    client picks.

    Raises:
        ApiError: 400 naming the ``webhook`` query parameter.
    """
    prefix = f"Invalid query parameter: webhook: {url[:200]!r}"
    if len(url) > 8192:
        raise ApiError(400, f"{prefix} is longer than 8,192 characters")
    parts = urlsplit(url)
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        host = None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ApiError(400, f"{prefix} is not an absolute http(s) URL")
    if not _host_allowed(host, allow_hosts):
        raise ApiError(
            400,
            f"{prefix}: the mock delivers webhooks to loopback addresses only "
            "(127.0.0.0/8, ::1, localhost); allow more hosts with the "
            "webhook_allow_hosts setting (WAVESPEED_MOCK_WEBHOOK_ALLOW_HOSTS)",
        )


# -- delivery ----------------------------------------------------------------------


class WebhookDelivery:
    """Sends a finished prediction to its webhook, retrying on failure."""

    def __init__(
        self, service: MockService, secrets_: WebhookSecrets, log_: WebhookLog
    ) -> None:
        settings = service.settings
        self.service = service
        self.secrets = secrets_
        self.log = log_
        self.retry_base_s = float(
            getattr(settings, "webhook_retry_base_s", DEFAULT_RETRY_BASE_S)
        )
        self.timeout_s = float(
            getattr(settings, "webhook_timeout_s", DEFAULT_TIMEOUT_S)
        )

    async def __call__(self, p: Prediction, view: dict[str, Any]) -> None:
        # A deletion is the user's doing, not the end of the task. [inferred]
        if not p.webhook or view.get("status") == "deleted":
            return
        if view.get("status") not in TERMINAL_STATUSES:
            # polls:N: the watcher fires when the outcome is known, before the
            # Nth poll makes it visible; a "processing" body would mislead.
            log.warning(
                "webhook for %s skipped: status %r is not terminal",
                p.id,
                view.get("status"),
            )
            return
        await self.deliver(p.webhook, view, api_key=p.api_key)

    async def deliver(self, url: str, view: dict[str, Any], *, api_key: str) -> bool:
        """POST ``view`` to ``url``; True once an attempt got a 2xx."""
        import httpx

        clock = self.service.clock
        body = webhook_body(view)
        secret = self.secrets.secret_for(api_key)
        webhook_id = str(view["id"])
        # trust_env=False: a proxy from the environment must not see loopback traffic.
        async with httpx.AsyncClient(
            timeout=self.timeout_s, follow_redirects=False, trust_env=False
        ) as client:
            for attempt in range(1, MAX_RETRIES + 2):
                at = clock.now()
                headers = sign_webhook(
                    body, secret, webhook_id=webhook_id, timestamp=int(at)
                )
                status_code: int | None = None
                error: str | None = None
                try:
                    response = await client.post(url, content=body, headers=headers)
                    status_code = response.status_code
                    if not 200 <= status_code < 300:
                        error = f"HTTP {status_code}"
                except httpx.HTTPError as exc:
                    error = (
                        f"{exc.__class__.__name__}: {exc}"
                        if str(exc)
                        else exc.__class__.__name__
                    )
                self.log.record(
                    {
                        "prediction_id": webhook_id,
                        "url": url,
                        "attempt": attempt,
                        "status_code": status_code,
                        "error": error,
                        "at": at,
                    }
                )
                if error is None:
                    return True
                if attempt > MAX_RETRIES:
                    break
                delay = self.retry_base_s * 2 ** (attempt - 1)
                log.info(
                    "webhook for %s failed (%s); retry %d in %g s",
                    webhook_id,
                    error,
                    attempt,
                    delay,
                )
                await clock.sleep_until(clock.now() + delay)
        log.warning(
            "webhook for %s to %s failed after %d attempts",
            webhook_id,
            url,
            MAX_RETRIES + 1,
        )
        return False


# -- installing --------------------------------------------------------------------


def install(service: MockService) -> list[BaseRoute]:
    """Register webhook delivery on ``service``; return the secret route.

    Sets ``service.webhook_log`` (:class:`WebhookLog`) and
    ``service.webhook_secrets`` (:class:`WebhookSecrets`).
    """
    settings = service.settings
    secrets_ = WebhookSecrets(service.store)
    attempts = WebhookLog()
    service.terminal_listeners.append(WebhookDelivery(service, secrets_, attempts))
    service.webhook_log = attempts
    service.webhook_secrets = secrets_
    service.reset_listeners.append(attempts.clear)
    allow = tuple(getattr(settings, "webhook_allow_hosts", ()))
    _install_url_check(service, allow)
    accepted = frozenset(settings.api_keys)

    async def get_secret(request: Request) -> Response:
        api_key = require_api_key(request, accepted)
        return envelope({"secret": secrets_.secret_for(api_key)})

    return [Route("/api/v3/webhook/secret", get_secret, methods=["GET"])]


def _install_url_check(service: MockService, allow: tuple[str, ...]) -> None:
    """Refuse disallowed webhook URLs at submit, before anything is stored."""

    def check(url: str) -> None:
        check_webhook_url(url, allow)

    service.webhook_checks.append(check)
