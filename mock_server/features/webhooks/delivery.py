"""Webhook delivery: finished predictions POSTed to their ``?webhook=`` URL.

A submit with ``?webhook=URL`` makes the server POST the prediction, signed
(see :mod:`.signing`), once the task ends. A failed attempt (no answer, a
timeout, any non-2xx, redirects included) is retried up to 3 times with
exponential backoff, waiting on the server's clock so that a virtual clock
drives the retries. Every attempt is logged.

Two components: :class:`WebhookUrlCheck` (an Admission: bad or disallowed URLs
are refused at submit, before anything is stored) and :class:`WebhookDelivery`
(a Notifier).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import logging
import secrets
import threading
from typing import Any
from urllib.parse import urlsplit

from ...core.clock import ServerClock
from ...core.components import SubmitRequest
from ...core.lifecycle import is_terminal
from ...core.prediction import Prediction
from ...core.store import PredictionStore
from ...errors import ApiError
from .signing import SECRET_PREFIX, sign_webhook, webhook_body

__all__ = [
    "MAX_RETRIES",
    "WebhookDelivery",
    "WebhookLog",
    "WebhookSecrets",
    "WebhookUrlCheck",
    "check_webhook_url",
]

log = logging.getLogger("wavespeed_mock.server")

MAX_RETRIES = 3
"""Retries after the first attempt [documented: "up to 3 times"]."""
LOOPBACK_NAMES = frozenset({"localhost"})


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
    if any(c <= " " or c == "\x7f" for c in url):
        raise ApiError(
            400, f"{prefix} is not a valid URL (it holds a space or control character)"
        )
    try:
        parts = urlsplit(url)  # raises ValueError for a broken IPv6 host ("[::1")
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ApiError(400, f"{prefix} is not a valid URL") from None
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


class WebhookUrlCheck:
    """Refuses a submit whose webhook URL the mock will not deliver to (400)."""

    def __init__(self, allow_hosts: tuple[str, ...] = ()) -> None:
        self.allow_hosts = allow_hosts

    def admit(self, request: SubmitRequest) -> None:
        if request.webhook is not None:
            check_webhook_url(request.webhook, self.allow_hosts)


class WebhookDelivery:
    """Sends a finished prediction to its webhook, retrying on failure (a Notifier)."""

    def __init__(
        self,
        *,
        clock: ServerClock,
        secrets: WebhookSecrets,
        retry_base_s: float,
        timeout_s: float,
    ) -> None:
        self.clock = clock
        self.secrets = secrets
        self.log = WebhookLog()
        self.retry_base_s = retry_base_s
        self.timeout_s = timeout_s

    def reset(self) -> None:
        self.log.clear()

    async def notify(self, p: Prediction, view: dict[str, Any]) -> None:
        # A deletion is the user's doing, not the end of the task. [inferred]
        if not p.webhook or view.get("status") == "deleted":
            return
        if not is_terminal(str(view.get("status"))):
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

        clock = self.clock
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
                except asyncio.CancelledError:
                    # The server stopped mid-attempt: the receiver may have the
                    # delivery already, so the attempt is logged, not lost.
                    self.log.record(
                        {
                            "prediction_id": webhook_id,
                            "url": url,
                            "attempt": attempt,
                            "status_code": None,
                            "error": "cancelled: the server stopped during the attempt",
                            "at": at,
                        }
                    )
                    raise
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
