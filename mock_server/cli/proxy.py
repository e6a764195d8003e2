"""``serve --proxy-port N``: a forward proxy that answers for ``api.wavespeed.ai`` only.

A client run with ``HTTPS_PROXY=http://127.0.0.1:N`` (and the local CA trusted,
``serve --tls``) keeps its hard-coded ``https://api.wavespeed.ai``: it asks this
proxy to ``CONNECT api.wavespeed.ai:443``, and the tunnel leads to the mock's
own HTTPS listener, which holds a certificate for that name (the way Hoverfly
and mitmproxy stand in for a host). Every other destination is refused with
403, and a plain-HTTP request with 405: this is never an open proxy.

Hand-written rather than taken from a proxy package: what it does is one
CONNECT to one fixed address of this process, about sixty lines; mitmproxy,
the well-kept engine for the general case, would bring its own TLS stack and
certificate authority beside the mock's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading

from .tls import API_HOST

__all__ = ["MAX_HEAD_BYTES", "ConnectProxy"]

log = logging.getLogger("wavespeed_mock.server")

MAX_HEAD_BYTES = 8 * 1024
"""A CONNECT request's head larger than this is refused."""
HEAD_TIMEOUT_S = 10.0
"""A client must send its whole CONNECT head within this."""
ALLOWED = {f"{API_HOST}:443", API_HOST}


class ConnectProxy:
    """The proxy, serving on ``sock`` in a thread of its own; tunnels go to
    ``target`` (the mock's HTTPS address)."""

    def __init__(self, sock: socket.socket, target: tuple[str, int]) -> None:
        self.sock = sock
        self.target = target
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(
            target=self._run, name="wavespeed-proxy", daemon=True
        )

    def start(self) -> ConnectProxy:
        self._thread.start()
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        server = loop.run_until_complete(
            asyncio.start_server(self._handle, sock=self.sock, limit=MAX_HEAD_BYTES)
        )
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.close()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        except (
            asyncio.TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            writer.close()
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = request_line.partition(" ")
        destination = rest.partition(" ")[0]
        if method != "CONNECT":
            await _refuse(writer, 405, "only CONNECT to api.wavespeed.ai:443 is served")
            return
        if destination.lower() not in ALLOWED:
            log.warning("proxy: refused CONNECT %s", destination[:200])
            await _refuse(
                writer,
                403,
                f"this proxy reaches {API_HOST}:443 only, not {destination}",
            )
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                *self.target
            )
        except OSError as exc:
            await _refuse(writer, 502, f"the mock's HTTPS listener: {exc}")
            return
        writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer)
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(64 * 1024):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


async def _refuse(writer: asyncio.StreamWriter, status: int, why: str) -> None:
    reason = {403: "Forbidden", 405: "Method Not Allowed", 502: "Bad Gateway"}[status]
    body = why.encode("utf-8")
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1")
        + body
    )
    with contextlib.suppress(ConnectionError, OSError):
        await writer.drain()
    writer.close()
