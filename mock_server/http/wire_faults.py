"""Faults on the wire: gateway answers on any route, and connection faults.

:class:`WireFaultMiddleware` asks the fault source (the scenario book) what
happens to each API request (:class:`~..core.components.RouteFault`) and does
it: an answer in place of the app's (a gateway page, a 5xx or 429, an expired
URL's 403: nothing is done), or, once the app has answered (the work is done),
a connection fault: a reset, a closed connection with no answer, a malformed
chunk, a slow dribble, or silence until the client gives up.

Connection faults need the client's TCP connection, which ASGI does not hand an
app. uvicorn calls the app with ``send`` bound to its per-request cycle object,
which holds the connection's asyncio transport (``cycle.transport``) and learns
of the connection's end (``cycle.disconnected``); :func:`expose_connection`
wraps the app given to uvicorn and puts both in the request's scope under
``scope["extensions"]["wavespeed_mock.connection"]``, so nothing below reaches
into uvicorn. After cutting a connection the middleware waits until uvicorn has
seen it go, so uvicorn logs nothing (it stays silent for an app that returns
without an answer on a lost connection). Without that handle (in process,
under httpx's ASGITransport) a connection fault is skipped with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.components import FaultSource, RouteCall, RouteFault, WireDecision
from ..core.keys import bearer_key
from ..core.prediction import Prediction
from ..errors import ApiError
from ..settings import SCENARIO_HEADER
from .responses import error_response

__all__ = [
    "CONNECTION_EXTENSION",
    "DECISION",
    "READ",
    "Connection",
    "WireFaultMiddleware",
    "decision_of",
    "expose_connection",
    "gateway_response",
    "read_of",
]

log = logging.getLogger("wavespeed_mock.server")

CONNECTION_EXTENSION = "wavespeed_mock.connection"
DECISION = "wavespeed_mock.decision"
"""The scope key of the fault source's :class:`WireDecision` about the request."""
READ = "wavespeed_mock.read"
"""The scope key of the prediction a request is about, as the edge read it
(its id and its row), so that a poll reads its row once (:func:`read_of`)."""
# How long to wait for uvicorn to notice a connection this module cut.
_NOTICE_S = 5.0

_REASONS = {
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}
# Storage-style codes for the XML bodies (S3's, as a pre-signed URL answers).
_XML_CODES = {
    403: ("AccessDenied", "Request has expired"),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    502: ("ServiceUnavailable", "Please reduce your request rate."),
    503: ("SlowDown", "Please reduce your request rate."),
}


@dataclass
class Connection:
    """The client's connection under one request: its transport, and whether
    the server has seen it end."""

    transport: asyncio.Transport
    # uvicorn's per-request cycle, weakly: the scope this connection is put in is
    # the cycle's own, so a strong reference made a cycle the collector had to
    # find for every request (issue 26's leak under gc.freeze()).
    cycle: weakref.ReferenceType[object]

    def is_closed(self) -> bool:
        """Whether uvicorn has seen the connection end (or dropped the request)."""
        cycle = self.cycle()
        return cycle is None or bool(getattr(cycle, "disconnected", True))

    async def closed(self) -> None:
        """Return once the server has seen the connection end (bounded)."""
        deadline = time.monotonic() + _NOTICE_S
        while not self.is_closed() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    def reset(self) -> None:
        """Close with a TCP reset: SO_LINGER 0 makes close() send RST, not FIN."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
        self.transport.abort()


def decision_of(scope: Scope) -> WireDecision | None:
    """The wire layer's decision about this request (None: it made none)."""
    decision: WireDecision | None = scope.get(DECISION)
    return decision


def read_of(scope: Scope, prediction_id: str) -> tuple[bool, Prediction | None]:
    """Whether the wire layer read ``prediction_id``'s row for this request,
    and the row it read (None: no such prediction)."""
    read: tuple[str, Prediction | None] | None = scope.get(READ)
    if read is None or read[0] != prediction_id:
        return False, None
    return True, read[1]


def expose_connection(app: ASGIApp) -> ASGIApp:
    """Wrap the app handed to uvicorn so requests carry their :class:`Connection`."""

    async def exposed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            cycle = getattr(send, "__self__", None)
            transport = getattr(cycle, "transport", None)
            if isinstance(transport, asyncio.Transport):
                connection = Connection(transport, weakref.ref(cycle))
                scope["extensions"] = {
                    **(scope.get("extensions") or {}),
                    CONNECTION_EXTENSION: connection,
                }
        await app(scope, receive, send)

    return exposed


def gateway_response(
    status: int,
    style: str,
    *,
    message: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    """An error answer as a gateway or storage sends it: ``json`` (the API's
    envelope), ``html``, ``text``, ``empty`` or ``xml``."""
    reason = _REASONS.get(status, "Error")
    if style == "json":
        return error_response(status, message or f"{status} {reason}", headers=headers)
    if style == "html":
        # nginx's default error page, as load balancers answer [inferred]
        body = (
            f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n"
            "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        )
        return Response(body, status, headers, media_type="text/html")
    if style == "text":
        return Response(
            f"error code: {status}", status, headers, media_type="text/plain"
        )
    if style == "xml":
        code, text = _XML_CODES.get(status, ("InternalError", reason))
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{text}</Message></Error>"
        )
        return Response(body, status, headers, media_type="application/xml")
    return Response(b"", status, headers)  # empty: no body, no content type


@dataclass
class _Captured:
    """The app's answer, held back while a connection fault decides its fate."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    messages: list[Message] = field(default_factory=list)

    async def send(self, message: Message) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    async def replay(self, send: Send) -> None:
        for message in self.messages:
            await send(message)


class WireFaultMiddleware:
    """Applies the fault source's :class:`RouteFault` to each API request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        faults: FaultSource,
        is_submit: Callable[[str], bool],
        read: Callable[[str], Awaitable[Prediction | None]],
    ) -> None:
        self.app = app
        self.faults = faults
        self.is_submit = is_submit
        """Whether a POST path is a submit to a served model."""
        self.read = read
        """Reads a prediction's row without blocking the loop (``Store.fetch``)."""
        self._warned = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        idle = scope["type"] != "http" or self.faults.idle()
        call = None if idle else self._call(scope)
        if call is None:
            await self.app(scope, receive, send)
            return
        if call.prediction_id is not None:
            row = await self.read(call.prediction_id)
            scope[READ] = (call.prediction_id, row)
            call = replace(call, prediction=row)
        try:
            decision = self.faults.route_fault(call)
        except ApiError as exc:
            await error_response(exc.status, exc.message)(scope, receive, send)
            return
        scope[DECISION] = (
            decision  # the submit's plan is made from it, not chosen again
        )
        fault = decision.fault
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "answer":
            response = gateway_response(
                fault.status,
                fault.error_body,
                message=fault.message,
                headers=dict(fault.headers),
            )
            await response(scope, receive, send)
        elif fault.kind == "dribble":
            await self.app(scope, receive, _dribbling(send, fault))
        else:
            await self._cut(scope, receive, send, fault)

    def _call(self, scope: Scope) -> RouteCall | None:
        path: str = scope["path"]
        method: str = scope["method"]
        route: str | None = None
        prediction_id = None
        if method == "POST" and self.is_submit(path):
            route = "submit"
        elif method == "GET" and path.startswith("/api/v3/predictions/"):
            parts = path.split("/")
            if len(parts) in (5, 6) and (len(parts) == 5 or parts[5] == "result"):
                route, prediction_id = "result", parts[4]
        elif method == "POST" and path in (
            "/api/v3/media/uploads",
            "/api/v3/media/upload/binary",
            "/api/v3/upload",
        ):
            route = "upload_ticket"
        elif method == "PUT" and path.startswith("/uploads/"):
            route = "upload_put"
        elif method in ("GET", "HEAD") and path.startswith("/outputs/"):
            route = "output"
            name = path[len("/outputs/") :]
            stem = name.split(".", 1)[0]
            prediction_id = stem.split("-", 1)[0] if "." in name else None
        if route is None and path.startswith("/api/"):
            route = "api"
        if route is None:
            return None
        headers = dict(scope["headers"])
        api_key = (
            bearer_key(headers.get(b"authorization", b"").decode("latin-1")) or None
        )
        named = headers.get(SCENARIO_HEADER.encode(), b"").decode("latin-1") or None
        return RouteCall(
            route=route,
            api_key=api_key,
            scenario=named,
            prediction_id=prediction_id,
            model=path[len("/api/v3/") :] if route == "submit" else None,
        )

    async def _cut(
        self, scope: Scope, receive: Receive, send: Send, fault: RouteFault
    ) -> None:
        connection: Connection | None = (scope.get("extensions") or {}).get(
            CONNECTION_EXTENSION
        )
        if connection is None:
            if not self._warned:
                self._warned = True
                log.warning(
                    "connection fault %r skipped: it needs a live server "
                    "(wavespeed-mock serve, LiveServer, the wavespeed_server fixture)",
                    fault.kind,
                )
            await self.app(scope, receive, send)
            return
        answer = _Captured()
        await self.app(scope, receive, answer.send)
        if fault.only_after_success and not 200 <= answer.status < 300:
            await answer.replay(send)
            return
        transport = connection.transport
        if fault.kind == "reset":
            connection.reset()
        elif fault.kind == "empty":
            transport.close()
        elif fault.kind == "malformed_chunk":
            transport.write(_malformed(answer))
            transport.close()
        elif fault.kind == "hang":
            # Nothing is sent: wait for the client to give up, then reset.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(_disconnect(receive), fault.hang_s)
            connection.reset()
        await connection.closed()


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _malformed(answer: _Captured) -> bytes:
    """The answer's head, then a chunk whose size line is not hexadecimal."""
    reason = _REASONS.get(answer.status, "OK").encode()
    head = [f"HTTP/1.1 {answer.status} ".encode() + reason]
    for name, value in answer.headers:
        if name.lower() not in (b"content-length", b"transfer-encoding"):
            head.append(name + b": " + value)
    head.append(b"transfer-encoding: chunked")
    return b"\r\n".join(head) + b"\r\n\r\nzz\r\n" + bytes(answer.body[:8]) + b"\r\n"


def _dribbling(send: Send, fault: RouteFault) -> Send:
    """``send`` that hands the body on ``dribble_bytes`` at a time, real time apart."""

    async def dribble(message: Message) -> None:
        if message["type"] != "http.response.body":
            await send(message)
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        step = fault.dribble_bytes
        pieces = [body[i : i + step] for i in range(0, len(body), step)] or [b""]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            await send(
                {
                    "type": "http.response.body",
                    "body": piece,
                    "more_body": more or not last,
                }
            )
            if not last:
                await asyncio.sleep(fault.dribble_interval_s)

    return dribble
