"""Self-check: validate every JSON answer the server sends against the contract.

Switched on with ``check_responses`` (the project's tests and the pytest plugin
do). Violations are logged and kept on the service, so a test can fail on them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...contracts import iter_response_errors

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
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, is_json
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = dict(message.get("headers", []))
                is_json = headers.get(b"content-type", b"").startswith(
                    b"application/json"
                )
            elif message["type"] == "http.response.body" and is_json:
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        if scope["method"] == "HEAD":
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
        elif status >= 400 and status != 416:
            problems.append(f"HTTP {status} answered without a JSON envelope")
        if is_json and not problems:
            problems.extend(
                str(e) for e in iter_response_errors(method, path, status, body)
            )
        for problem in problems:
            line = f"{method} {path} -> {status}: {problem}"
            log.error("contract violation: %s", line)
            self.sink.append(line)
