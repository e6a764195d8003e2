"""Helpers for the webhook, upload and account tests: an app with those parts
installed, driven in-process or live, and a loopback webhook receiver."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from wavespeed_mock.mock_server.assembly import MockServer, build_server
from wavespeed_mock.mock_server.http.app import create_app
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings

from ._fakes import FakeEngine

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
I2V = "/api/v3/character-ai/ovi/image-to-video"
T2V = "/api/v3/character-ai/ovi/text-to-video"
PROMPT = {"prompt": "Waves at dawn. <S>Hello.<E> <AUDCAP>Surf.<ENDAUDCAP>"}


def make_server(
    data_dir: Path, *, starting_balance: float | None = None, **options: Any
) -> MockServer:
    """A server with a fake engine and every feature."""
    values: dict[str, Any] = {"profile": "instant", "check_responses": True}
    values.update(options)
    settings = Settings(data_dir=data_dir, starting_balance=starting_balance, **values)
    return build_server(settings, engine=FakeEngine())


def make_app(server: MockServer) -> FastAPI:
    return create_app(server=server)


@asynccontextmanager
async def running(
    server: MockServer, *, key: str = KEY
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of the app; asserts no contract violation at the end."""
    service = server.service
    app = make_app(server)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=service.base_url,
            headers={"Authorization": f"Bearer {key}"},
        ) as client,
    ):
        yield client
    assert service.contract_violations == []


def live_server(server: MockServer) -> LiveServer:
    """A started live server around ``server`` (settings with port 0)."""
    # LiveServer picks the port and points the service's URLs at it.
    return LiveServer(server.settings, server=server).start()


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Yield to the event loop until ``predicate()`` holds (real time)."""
    import anyio

    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await anyio.sleep(0.01)


class Receiver:
    """A loopback HTTP server that records webhook deliveries.

    ``statuses`` are answered in turn (then 200).
    """

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                receiver.deliveries.append(
                    ({k.lower(): v for k, v in self.headers.items()}, body)
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
