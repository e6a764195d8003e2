"""The access log: one line per request, ``METHOD PATH STATUS MSms``.

Off by default (``--access-log``, ``WAVESPEED_MOCK_ACCESS_LOG``). Lines go to the
``wavespeed_mock.access`` logger at INFO; ``wavespeed-mock serve`` prints them on
standard error. The query string is left out: it may carry a webhook URL with a
token in it, and the path says which route answered.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ACCESS_LOGGER", "AccessLogMiddleware"]

ACCESS_LOGGER = "wavespeed_mock.access"

log = logging.getLogger(ACCESS_LOGGER)


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app dies before answering

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            log.info(
                "%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed_ms
            )
