"""The playground's webhook inbox: a receiver on the mock itself, checking signatures.

A submit from the page may name ``<server>/playground/inbox`` as its webhook;
the mock then delivers to itself, and the inbox checks each delivery's signature
as a client's receiver would (with the key's secret, through the verifier the
assembly hands in: the webhooks feature's ``verify_webhook``). The page shows
each delivery with that verdict. The last :data:`INBOX_SIZE` are kept: in
memory, or with a shared store (``--database``) in its logs, so a delivery
received by any process is listed by every one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Protocol

from ...core.logs import MemoryLog, SharedLog
from ...core.store import LogStore

__all__ = ["INBOX_BODY_BYTES", "INBOX_SIZE", "DeliveryVerifier", "WebhookInbox"]

INBOX_SIZE = 200
INBOX_BODY_BYTES = 1024 * 1024
"""A delivery is one prediction object; anything larger is not one."""
SHOWN_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class DeliveryVerifier(Protocol):
    """Checks one delivery's signature; the verdict as text."""

    def verdict(self, headers: Mapping[str, str], body: bytes) -> str:
        """``"valid"``, or what is wrong with the delivery."""
        ...


class WebhookInbox:
    """Deliveries received by the playground, newest last, each with its verdict.

    With ``shared`` (a store whose logs every process reads: ``PostgresStore``)
    the entries live there, not in this process.
    """

    def __init__(
        self, verifier: DeliveryVerifier, shared: LogStore | None = None
    ) -> None:
        self.verifier = verifier
        self._log: MemoryLog | SharedLog = (
            MemoryLog(INBOX_SIZE)
            if shared is None
            else SharedLog(shared, "inbox", INBOX_SIZE)
        )

    def receive(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """Record one delivery and check its signature; the entry recorded."""
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            payload: Any = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        entry = {
            "received_at": time.time(),
            "headers": {h: lowered.get(h) for h in SHOWN_HEADERS},
            "prediction_id": lowered.get("webhook-id"),
            "status": payload.get("status") if isinstance(payload, dict) else None,
            "verdict": self.verifier.verdict(lowered, body),
            "body": payload,
        }
        self._log.record(entry)
        return entry

    def entries(self) -> list[dict[str, Any]]:
        return self._log.entries()

    def clear(self) -> None:
        self._log.clear()
