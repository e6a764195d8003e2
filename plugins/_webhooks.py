"""A webhook receiver for tests: a loopback HTTP endpoint that checks signatures.

The stdlib's threading HTTP server is enough here: one route, small bodies, a
few requests per test, and no dependency to add.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..mock_server.features.webhooks.signing import verify_webhook

__all__ = ["ReceivedWebhook", "WebhookReceiver"]

MAX_BODY_BYTES = 10 * 1024 * 1024  # a prediction view is a few KB; bound it anyway


@dataclass(frozen=True)
class ReceivedWebhook:
    """One delivery as the receiver got it."""

    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes
    """The raw body, as signed."""
    payload: dict[str, Any] | None
    """The verified prediction object; None when verification failed."""
    error: str | None
    """Why verification failed (None when it passed)."""
    answered: int
    """The HTTP status the receiver answered."""
    at: float = field(default_factory=time.time)

    @property
    def verified(self) -> bool:
        return self.error is None

    @property
    def prediction_id(self) -> str | None:
        return self.headers.get("webhook-id")


class WebhookReceiver:
    """Receives deliveries on ``url``, verifies each against ``secret``.

    ``now`` is the clock the timestamps are checked against: the server's, so that
    a delivery signed on a virtual clock moved hours ahead still verifies.

    Attributes:
        url: where to point ``?webhook=``.
        deliveries: every delivery received, oldest first.
        status: the HTTP status to answer (200; set 500 to exercise retries).
    """

    def __init__(
        self,
        secret: str,
        *,
        now: Callable[[], float] = time.time,
        path: str = "/webhook",
    ) -> None:
        self.secret = secret
        self._now = now
        self.status = 200
        self.deliveries: list[ReceivedWebhook] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY_BYTES:
                    self.send_error(413)
                    return
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver._receive(headers, body, self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the deliveries list is the record

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{path}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="wavespeed-webhooks", daemon=True
        )
        self._thread.start()

    def _receive(
        self, headers: dict[str, str], body: bytes, handler: BaseHTTPRequestHandler
    ) -> None:
        status = self.status
        payload: dict[str, Any] | None = None
        error: str | None = None
        try:
            payload = verify_webhook(headers, body, self.secret, now=self._now())
        except Exception as exc:  # every failure is recorded, and fails the test
            error = f"{exc.__class__.__name__}: {exc}"
        # Recorded before the answer goes out: once the server has its answer
        # (and a test's settle() or advance() returns), the delivery is in the
        # list. Recorded after, a test could look in the gap and miss it.
        with self._changed:
            self.deliveries.append(
                ReceivedWebhook(headers, body, payload, error, status)
            )
            self._changed.notify_all()
        handler.send_response(status)
        handler.send_header("content-length", "0")
        handler.end_headers()

    def wait_for(
        self,
        prediction_id: str | None = None,
        *,
        count: int = 1,
        timeout_s: float = 120,
    ) -> list[ReceivedWebhook]:
        """Wait until ``count`` deliveries (for ``prediction_id``, if given) arrived.

        The bound is generous: the delivery follows a render, and a cold render on
        a busy machine was seen to take 32 s.

        Raises:
            TimeoutError: fewer arrived within ``timeout_s`` seconds of real time.
        """

        def matching() -> list[ReceivedWebhook]:
            return [
                d
                for d in self.deliveries
                if prediction_id is None or d.prediction_id == prediction_id
            ]

        with self._changed:
            if not self._changed.wait_for(lambda: len(matching()) >= count, timeout_s):
                what = f" for {prediction_id!r}" if prediction_id else ""
                raise TimeoutError(
                    f"{len(matching())} of {count} webhook deliveries{what} arrived "
                    f"within {timeout_s:g} s; received so far: "
                    f"{[d.prediction_id for d in self.deliveries]!r}"
                )
            return matching()

    @property
    def unverified(self) -> list[ReceivedWebhook]:
        """Deliveries whose signature, timestamp or body did not verify."""
        with self._changed:
            return [d for d in self.deliveries if not d.verified]

    def clear(self) -> None:
        with self._changed:
            self.deliveries.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=30)

    def __repr__(self) -> str:
        return f"<WebhookReceiver {self.url} ({len(self.deliveries)} received)>"
