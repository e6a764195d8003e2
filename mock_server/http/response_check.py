"""Self-check: validate every JSON answer the server sends against the contract.

Switched on with ``check_responses`` (the project's tests and the pytest plugin
do). Violations are logged and kept on the service, so a test can fail on them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...contracts import iter_media_errors, iter_response_errors

__all__ = ["ResponseCheckMiddleware"]

log = logging.getLogger("wavespeed_mock.server")


class ResponseCheckMiddleware:
    def __init__(self, app: ASGIApp, sink: list[str] | None = None) -> None:
        self.app = app
        self.sink = sink if sink is not None else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        is_json = False
        media_type: str | None = None
        chunks: list[bytes] = []
        empty = True

        async def capture(message: Message) -> None:
            nonlocal status, is_json, media_type, empty
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = dict(message.get("headers", []))
                raw_type = headers.get(b"content-type")
                media_type = raw_type.decode("latin-1") if raw_type else None
                is_json = (media_type or "").startswith("application/json")
            elif message["type"] == "http.response.body":
                empty = empty and not message.get("body")
                if is_json:
                    chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        if scope["method"] == "HEAD" or status == 0:
            return  # status 0: no answer was sent (a connection fault)
        if not is_json and status >= 400:
            # a gateway page, a storage error, an empty body: declared or not
            self._report(
                scope["method"],
                scope["path"],
                status,
                [
                    str(e)
                    for e in iter_media_errors(
                        scope["method"], scope["path"], status, media_type, empty=empty
                    )
                ],
            )
            return
        self._check(scope["method"], scope["path"], status, is_json, b"".join(chunks))

    def _check(
        self, method: str, path: str, status: int, is_json: bool, raw: bytes
    ) -> None:
        problems: list[str] = []
        body: Any = None
        if is_json:
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                problems.append("the body is not JSON")
        if is_json and not problems:
            problems.extend(
                str(e) for e in iter_response_errors(method, path, status, body)
            )
        self._report(method, path, status, problems)

    def _report(self, method: str, path: str, status: int, problems: list[str]) -> None:
        for problem in problems:
            line = f"{method} {path} -> {status}: {problem}"
            log.error("contract violation: %s", line)
            self.sink.append(line)
