"""Running the server in a background thread, on a free loopback port.

The pytest plugin's live-server fixture and the project's own tests use this;
``wavespeed-mock serve`` runs uvicorn in the foreground instead.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import FrameType, TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI

from ..assembly import Features, MockServer, build_server
from ..core.engine import Engine
from ..core.service import SIGNAL_DRAIN_S, MockService
from ..settings import Settings
from .app import create_app
from .timeouts import timed_protocol
from .wire_faults import expose_connection

__all__ = ["LiveServer", "uvicorn_server"]

SHUTDOWN_GRACE_S = 1.0
"""After a stop begins, requests still running get this long before they are
cancelled. Sync-mode waits end at once (their 5004 body); this bounds what else
may wait (a scenario's latency, a poll waiting for a render)."""

UVICORN_OPTIONS: dict[str, Any] = {
    "log_level": "warning",
    "access_log": False,
    "lifespan": "on",
    # The standard loop, not uvloop: under uvloop, submits at 64 connections
    # had a p99 of 47-506 ms in 26 of 66 wrk runs while the app's own
    # handling stayed under 31 ms; on the standard loop five runs held p99 at
    # 28-31 ms and the maximum at 52 ms (docs/performance.md).
    "loop": "asyncio",
    "timeout_graceful_shutdown": SHUTDOWN_GRACE_S,
}
"""How uvicorn runs the app, in a thread here and in ``wavespeed-mock serve``."""


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, telling the service when a stop begins (SIGTERM, SIGINT)."""

    def __init__(self, config: uvicorn.Config, service: MockService) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.service.begin_shutdown(drain_s=SIGNAL_DRAIN_S)
        super().handle_exit(sig, frame)


def uvicorn_server(
    app: FastAPI, *, ssl_certfile: str | None = None, ssl_keyfile: str | None = None
) -> uvicorn.Server:
    """uvicorn's server for an app from :func:`create_app`, with the mock's timeouts.

    Request headers are bounded by ``Settings.header_timeout_s`` (in the
    protocol); a stop ends sync-mode waits at once.
    """
    mock: MockServer = app.state.server
    settings = mock.settings
    config = uvicorn.Config(
        # connection faults (scenarios) need the transport: expose_connection
        expose_connection(app),
        host=settings.host,
        port=settings.port,
        http=timed_protocol(settings.header_timeout_s),
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        **UVICORN_OPTIONS,
    )
    return _Uvicorn(config, mock.service)


class LiveServer:
    """A mock server running in a thread; use as a context manager.

    Example:
        >>> with LiveServer(Settings(data_dir=tmp_path, profile="instant")) as server:
        ...     httpx.get(server.url + "/_mock/health")
    """

    def __init__(
        self,
        settings: Settings,
        *,
        server: MockServer | None = None,
        engine: Engine | None = None,
    ) -> None:
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP
        self._socket = socket.socket(
            socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
        )
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((settings.host, settings.port if settings.port else 0))
        port = self._socket.getsockname()[1]
        self.settings = settings.replace(port=port)
        try:
            self.mock = server or build_server(self.settings, engine=engine)
        except BaseException:
            self._socket.close()
            raise
        """The server's parts: ``.service`` (the core) and ``.features``."""
        if not settings.public_url:
            self.mock.service.rebase(self.settings.base_url)
        self.app = create_app(server=self.mock)
        self._server = uvicorn_server(self.app)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def service(self) -> MockService:
        return self.mock.service

    @property
    def features(self) -> Features:
        return self.mock.features

    @property
    def url(self) -> str:
        return self.settings.base_url

    def start(self, timeout_s: float = 30.0) -> LiveServer:
        def run() -> None:
            try:
                asyncio.run(self._server.serve(sockets=[self._socket]))
            except BaseException as exc:  # surfaced by start() and stop()
                self._error = exc

        self._thread = threading.Thread(
            target=run, name="wavespeed-mock-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(
                    f"wavespeed-mock server failed to start: {self._error!r}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"wavespeed-mock server did not start within {timeout_s} s"
                )
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.service.begin_shutdown()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._socket.close()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<LiveServer {self.url}>"
