"""Webhook delivery: finished predictions POSTed to their ``?webhook=`` URL.

A submit with ``?webhook=URL`` makes the server POST the prediction, signed
(see :mod:`.signing`), once the task ends. A failed attempt (no answer, a
timeout, any non-2xx, redirects included) is retried up to 3 times with
exponential backoff, waiting on the server's clock so that a virtual clock
drives the retries. Every attempt is logged.

Any http(s) URL is accepted at submit, as the real API accepts any; a delivery
goes out only to an allowed address: loopback by default, more with
``Settings.webhook_allow``, judged on the address the host resolves to when the
delivery is due (``http://localhost./`` counts as what it resolves to), and
sent to that address (:mod:`...core.network`). A delivery that is not allowed
is logged, blocked, with its reason and the signed body and headers it would
have sent, so a test can check it.

Two components: :class:`WebhookUrlCheck` (an Admission: a URL that is not
http(s) is refused at submit, before anything is stored) and
:class:`WebhookDelivery` (a Notifier).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import threading
from typing import Any, Protocol
from urllib.parse import urlsplit

from ...core.clock import ServerClock
from ...core.components import SubmitRequest
from ...core.lifecycle import is_terminal
from ...core.logs import MemoryLog, SharedLog
from ...core.network import (
    AddressRule,
    DestinationRefused,
    IPAddress,
    Resolver,
    UnresolvedHost,
    internal_kind,
    pinned_request,
    resolve_checked,
    system_resolver,
)
from ...core.prediction import Prediction
from ...core.store import LogStore, Store
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


# -- secrets -----------------------------------------------------------------------


class WebhookSecrets:
    """One webhook secret per API key, kept in the store so it survives restarts.

    One per key, not one per account: the mock has no accounts, and a third-party
    note says "each API key has its own webhook secret". [inferred]
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()

    @staticmethod
    def _kv_key(key: str) -> str:
        return "webhook_secret:" + key

    def secret_for(self, key: str) -> str:
        """The secret of a key, given by its id (``core.keys.key_id``), made on
        first use: ``whsec_`` + base64 of 32 bytes."""
        with self._lock:
            found = self._store.get_value(self._kv_key(key))
            if found is not None:
                return found
            secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
            self._store.set_value(self._kv_key(key), secret)
            return secret


# -- the attempt log ---------------------------------------------------------------


class WebhookLog(MemoryLog):
    """Delivery attempts: ``{prediction_id, url, attempt, status_code, error,
    blocked, at}``; a blocked delivery adds ``reason``, ``body`` (the JSON text)
    and ``headers`` (signed), as it would have been sent.

    ``status_code`` is the receiver's HTTP status (None when there was no answer);
    ``error`` says what went wrong (None for a 2xx); ``at`` is the server clock's
    time of the attempt. Kept in memory only, the newest ``size`` attempts
    (``Settings.webhook_log_size``: a server that runs for weeks must not keep
    every attempt it ever made).
    """

    attempts = MemoryLog.entries


class SharedWebhookLog(SharedLog):
    """The attempt log kept in a shared store: an attempt made by any process
    is read through every process (``GET /_mock/webhooks``); the newest
    ``size`` are kept. Used with ``--database``."""

    def __init__(self, store: LogStore, size: int) -> None:
        super().__init__(store, "webhook", size)

    attempts = SharedLog.entries


class AttemptLog(Protocol):
    """What delivery records attempts in: :class:`WebhookLog` (this process's)
    or :class:`SharedWebhookLog` (a shared store's)."""

    def record(self, entry: dict[str, Any]) -> None: ...
    def attempts(self, prediction_id: str | None = None) -> list[dict[str, Any]]: ...
    def clear(self) -> int: ...


# -- which URLs are accepted, and where deliveries go -------------------------------


def check_webhook_url(url: str) -> None:
    """Refuse a webhook URL that is not an absolute http(s) URL.

    Any host is accepted, as the real API accepts any [inferred: its docs name no
    restriction]; where a delivery really goes is decided when it is sent
    (:class:`WebhookDelivery`).

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


def loopback_only(address: IPAddress) -> str | None:
    """The default rule for deliveries: loopback addresses only."""
    kind = internal_kind(address)
    return None if kind == "loopback" else f"{kind or 'a public'} address, not loopback"


class WebhookUrlCheck:
    """Refuses a submit whose webhook URL is not an http(s) URL (400)."""

    def admit(self, request: SubmitRequest) -> None:
        if request.webhook is not None:
            check_webhook_url(request.webhook)


# -- delivery ----------------------------------------------------------------------


class WebhookDelivery:
    """Sends a finished prediction to its webhook, retrying on failure (a Notifier)."""

    def __init__(
        self,
        *,
        clock: ServerClock,
        secrets: WebhookSecrets,
        retry_base_s: float,
        timeout_s: float,
        log_size: int,
        allow: tuple[str, ...] = (),
        resolver: Resolver = system_resolver,
        log: AttemptLog | None = None,
    ) -> None:
        """``allow``: hosts, addresses or networks (or ``*``) deliveries may go
        to beyond loopback, judged on the address the URL's host resolves to."""
        self.clock = clock
        self.secrets = secrets
        self.log: AttemptLog = log if log is not None else WebhookLog(log_size)
        """The attempt log: this process's (``WebhookLog``) or a shared store's
        (``SharedWebhookLog``)."""
        self.retry_base_s = retry_base_s
        self.timeout_s = timeout_s
        self.rule = AddressRule(allow=allow, default=loopback_only)
        self.resolver = resolver

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
        await self.deliver(p.webhook, view, key=p.key_id)

    async def deliver(self, url: str, view: dict[str, Any], *, key: str) -> bool:
        """POST ``view`` to ``url``; True once an attempt got a 2xx."""
        import httpx

        clock = self.clock
        body = webhook_body(view)
        secret = self.secrets.secret_for(key)
        webhook_id = str(view["id"])
        target = urlsplit(url)
        port = target.port or (443 if target.scheme == "https" else 80)
        try:
            addresses = await asyncio.wait_for(
                resolve_checked(str(target.hostname), port, self.rule, self.resolver),
                self.timeout_s,
            )
        except (DestinationRefused, UnresolvedHost, asyncio.TimeoutError) as exc:
            reason = (
                f"{target.hostname} did not resolve within {self.timeout_s:g} s"
                if isinstance(exc, asyncio.TimeoutError)
                else str(exc)
            )
            self._block(webhook_id, url, reason, body, secret)
            return False
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
                    response = await pinned_request(
                        client,
                        "POST",
                        target,
                        addresses,
                        headers=headers,
                        content=body,
                    )
                    await response.aclose()
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
                            "blocked": False,
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
                        "blocked": False,
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

    def _block(
        self, webhook_id: str, url: str, reason: str, body: bytes, secret: str
    ) -> None:
        """Log the delivery that the rule does not allow, with what it would have sent."""
        at = self.clock.now()
        headers = sign_webhook(body, secret, webhook_id=webhook_id, timestamp=int(at))
        log.info("webhook for %s to %s not delivered: %s", webhook_id, url, reason)
        self.log.record(
            {
                "prediction_id": webhook_id,
                "url": url,
                "attempt": 1,
                "status_code": None,
                "error": f"not delivered: {reason}",
                "blocked": True,
                "reason": (
                    f"{reason}; the mock delivers webhooks to loopback only unless "
                    "--webhook-allow (WAVESPEED_MOCK_WEBHOOK_ALLOW) names the host"
                ),
                "body": body.decode("utf-8"),
                "headers": headers,
                "at": at,
            }
        )
