"""Read timeouts: request headers and bodies are bounded in time.

uvicorn bounds the idle time between requests (keep-alive) but not how long a
client may take to send a request's headers or its body: a client dripping
bytes would hold a connection (and a request task) for ever. Headers are
bounded in the protocol (:class:`TimedHttpProtocol`, a subclass of uvicorn's
httptools protocol, the one way to see a request before it reaches the app),
bodies by :class:`BodyDeadlineMiddleware` around the app.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..errors import ApiError

__all__ = ["BodyDeadlineMiddleware", "TimedHttpProtocol", "timed_protocol"]

log = logging.getLogger("wavespeed_mock.server")


def _raw_envelope(status: int, reason: bytes, message: str) -> bytes:
    body = json.dumps({"code": status, "message": message}).encode()
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class TimedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's headers.

    The deadline starts when the connection opens or a request's first byte
    arrives; past it the client gets a 408 in the envelope and the connection
    closes. Malformed requests get the envelope too (400), not plain text.
    """

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_deadline: float | None = None

    # One timer a connection, moved lazily: a request sets the deadline and
    # its headers clear it, and the timer, when it fires, goes on to the next
    # deadline or ends. A timer made and cancelled for every request cost
    # a few microseconds of each poll (docs/performance.md).
    def _arm(self) -> None:
        if self._header_deadline is not None:  # counting from the first byte
            return
        self._header_deadline = self.loop.time() + self.header_timeout_s
        if self._header_timer is None:
            self._header_timer = self.loop.call_at(
                self._header_deadline, self._check_headers
            )

    def _disarm(self) -> None:
        self._header_deadline = None

    def _check_headers(self) -> None:
        deadline = self._header_deadline
        if deadline is not None and self.loop.time() < deadline:
            self._header_timer = self.loop.call_at(deadline, self._check_headers)
            return
        self._header_timer = None
        if deadline is not None:
            self._headers_too_slow()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._header_timer is not None:  # the protocol is not held after
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle between requests is the keep-alive timer's business.
        self._disarm()

    def _headers_too_slow(self) -> None:
        if self.transport.is_closing():
            return
        log.info(
            "closed a connection from %s: request headers not received within %g s",
            self.client,
            self.header_timeout_s,
        )
        self.transport.write(
            _raw_envelope(
                408,
                b"Request Timeout",
                f"Request headers not received within {self.header_timeout_s:g} s",
            )
        )
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        self.transport.write(
            _raw_envelope(
                400, b"Bad Request", f"{msg} Send a well-formed HTTP/1.1 request."
            )
        )
        self.transport.close()


def timed_protocol(header_timeout_s: float) -> type[TimedHttpProtocol]:
    """The protocol class for uvicorn's ``http`` option, with this header deadline."""
    return type(
        "TimedHttpProtocol",
        (TimedHttpProtocol,),
        {"header_timeout_s": header_timeout_s},
    )


class BodyDeadlineMiddleware:
    """A request's whole body must arrive within ``timeout_s`` (408 after that).

    Only reads of the body are timed; once the body is complete, later
    ``receive`` calls (waiting for a disconnect) pass through untouched.
    """

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        reading = True

        async def timed_receive() -> Message:
            nonlocal reading
            if not reading:
                return await receive()
            try:
                message: Message = await _within(receive(), deadline - loop.time())
            except asyncio.TimeoutError:
                reading = False
                raise ApiError(
                    408,
                    f"Request body not received within {self.timeout_s:g} s",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] != "http.request" or not message.get("more_body"):
                reading = False
            return message

        await self.app(scope, timed_receive, send)


if sys.version_info >= (3, 11):

    async def _within(awaitable: Any, seconds: float) -> Any:
        async with asyncio.timeout(max(seconds, 0.0)):
            return await awaitable

else:  # pragma: no cover - Python 3.10

    async def _within(awaitable: Any, seconds: float) -> Any:
        return await asyncio.wait_for(awaitable, max(seconds, 0.0))
