"""The request journal: what each client asked and what it was answered.

Kept in memory (the last 10,000 requests), readable at ``GET /_mock/journal``,
so a test can check which calls its code made (and with which SDK headers).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..settings import ANY_MODEL_HEADER, CONTROL_PREFIX

__all__ = ["JournalMiddleware"]


_ANY_MODEL = ANY_MODEL_HEADER.encode("latin-1")


class JournalMiddleware:
    def __init__(self, app: ASGIApp, journal: deque[dict[str, Any]]) -> None:
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
                self._record(scope, message["status"], any_model)
            await send(message)

        await self.app(scope, receive, capture)
        if not answered:
            self._record(scope, 0)  # no answer left: a scenario's connection fault

    def _record(self, scope: Scope, status: int, any_model: str | None = None) -> None:
        headers = dict(scope["headers"])
        entry = {
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
        self.journal.append(entry)
