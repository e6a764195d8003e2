"""The request journal: what each client asked and what it was answered.

One entry per request, made before its answer leaves and kept by the server's
journal (``core/journal.py``: the newest ``--journal-size`` in memory, or in
the shared store with ``--database``, waited for before the answer leaves),
readable at ``GET /_mock/journal``, so a test can check which calls its code
made (and with which SDK headers).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.journal import Journal, SharedJournal
from ..settings import ANY_MODEL_HEADER, CONTROL_PREFIX

__all__ = ["JournalMiddleware", "journal_entry"]


_ANY_MODEL = ANY_MODEL_HEADER.encode("latin-1")


class JournalMiddleware:
    def __init__(self, app: ASGIApp, journal: Journal | SharedJournal) -> None:
        self.app = app
        self.journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return

        answered = False

        async def capture(message: Message) -> None:
            nonlocal answered
            # Recorded before the answer leaves, so the journal's order is the
            # order in which clients saw their answers.
            if message["type"] == "http.response.start":
                answered = True
                any_model = next(
                    (
                        value.decode("latin-1")
                        for name, value in message.get("headers", ())
                        if name == _ANY_MODEL
                    ),
                    None,
                )
                kept = self._record(scope, message["status"], any_model)
                if kept is not None:  # a shared journal: in before the answer leaves
                    await kept
            await send(message)

        await self.app(scope, receive, capture)
        if not answered:
            # No answer left: a scenario's connection fault.
            kept = self._record(scope, 0)
            if kept is not None:
                await kept

    def _record(
        self, scope: Scope, status: int, any_model: str | None = None
    ) -> Awaitable[None] | None:
        return self.journal.append(journal_entry(scope, status, any_model))


def journal_entry(
    scope: Scope, status: int, any_model: str | None = None
) -> dict[str, Any]:
    """The journal's entry for a request answered with ``status`` (0: none)."""
    headers = dict(scope["headers"])
    entry: dict[str, Any] = {
        "at": time.time(),
        "method": scope["method"],
        "path": scope["path"],
        "query": scope.get("query_string", b"").decode("latin-1"),
        "status": status,
        "client_name": headers.get(b"x-client-name", b"").decode("latin-1"),
        "client_version": headers.get(b"x-client-version", b"").decode("latin-1"),
    }
    if any_model is not None:
        # Served by --any-model: the output kind the id implied.
        entry["any_model"] = any_model
    return entry
