"""Helpers for the webhook, upload and account tests: an app with those parts
installed, driven in-process or live, and a loopback webhook receiver."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from wavespeed_mock.mock_server.assembly import MockServer, build_server
from wavespeed_mock.mock_server.http.app import create_app
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings

from .._net import free_port
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


async def upload_binary(
    client: httpx.AsyncClient, name: str, data: bytes, content_type: str = "image/png"
) -> dict[str, Any]:
    """``POST /api/v3/media/upload/binary``: the answer's ``data`` (asserts a 200)."""
    answer = await client.post(
        "/api/v3/media/upload/binary", files={"file": (name, data, content_type)}
    )
    assert answer.status_code == 200, answer.text
    data_: dict[str, Any] = answer.json()["data"]
    return data_


@contextmanager
def checked_live_server(
    data_dir: Path, *, synthetic: bool = False, **settings: Any
) -> Iterator[LiveServer]:
    """A live server (fake engine, instant profile, unless ``synthetic`` or
    ``settings`` say otherwise); fails on leaving if it sent any answer that
    breaks the contract."""
    values: dict[str, Any] = {"port": 0, "profile": "instant", "check_responses": True}
    values.update(settings)
    engine = None if synthetic else FakeEngine()
    server = LiveServer(Settings(data_dir=data_dir, **values), engine=engine).start()
    try:
        yield server
    finally:
        server.stop()
    violations = server.service.contract_violations
    assert not violations, "answers that break the contract:\n" + "\n".join(violations)


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


async def poll_until_terminal(
    client: httpx.AsyncClient, pid: str, **headers: str
) -> dict[str, Any]:
    """Poll until the task is terminal (a poll never waits for a render)."""
    from wavespeed_mock.contracts import terminal_statuses

    data: dict[str, Any] = {}

    async def ended() -> bool:
        nonlocal data
        answer = await client.get(f"/api/v3/predictions/{pid}/result", headers=headers)
        data = answer.json()["data"]
        return data["status"] in terminal_statuses()

    import anyio

    deadline = time.monotonic() + 120.0  # a cold render on a busy machine
    while not await ended():
        if time.monotonic() > deadline:
            raise AssertionError(f"{pid} not terminal in time: {data['status']}")
        await anyio.sleep(0.01)
    return data


class Receiver:
    """A loopback HTTP server that records webhook deliveries.

    ``statuses`` are answered in turn (then 200). With ``hold``, each delivery
    is recorded and then left unanswered until the event is set (a test can kill
    the sender mid-delivery); the wait is bounded.
    """

    def __init__(
        self, statuses: list[int] | None = None, hold: threading.Event | None = None
    ) -> None:
        self.statuses = list(statuses or [])
        self.hold = hold
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                receiver.deliveries.append(
                    ({k.lower(): v for k, v in self.headers.items()}, body)
                )
                if receiver.hold is not None:
                    receiver.hold.wait(120)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                with contextlib.suppress(OSError):  # the sender may be gone
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
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


# -- handlers without a server -----------------------------------------------------


def asgi_request(
    method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None
) -> Request:
    """A request for calling a handler directly: ``body`` is sent as JSON (bytes
    as they are), in one piece."""
    if body is None or isinstance(body, bytes):
        raw = body or b""
    else:
        raw = json.dumps(body).encode()
    sent = {"content-type": "application/json", **(headers or {})}
    scope = {
        "type": "http", "method": method, "path": path, "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in sent.items()],
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request(scope, receive)


def answer_of(response: Response) -> Any:
    """The ``data`` of a handler's envelope."""
    return json.loads(bytes(response.body))["data"]


# -- PostgreSQL (WAVESPEED_MOCK_TEST_DATABASE; the fixtures are in conftest.py) --------

TEST_DATABASE = os.environ.get("WAVESPEED_MOCK_TEST_DATABASE", "")


def fresh_database(server: str) -> Iterator[str]:
    """A new empty database on ``server`` for one test, dropped after it."""
    import psycopg

    name = f"wavespeed_mock_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- waiting on conditions, never on the wall clock ------------------------------------
# (This section was appended whole, imports included, so it merges cleanly.)

from concurrent.futures import Future  # noqa: E402
from typing import TypeVar  # noqa: E402

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], bool], *, timeout_s: float = 30.0, what: str = "condition"
) -> None:
    """Block until ``predicate()`` holds; the bound is generous, for busy machines."""
    __tracebackhide__ = True
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout_s:g} s")
        time.sleep(0.01)


def in_thread(call: Callable[[], T]) -> Future[T]:
    """Run a blocking ``call`` (a request the server holds) in a daemon thread.

    ``future.done()`` tells whether it has been answered yet; ``future.result(30)``
    waits for the answer and re-raises what the call raised.
    """
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


class CallRecorder:
    """Records each call of an async method of one object, so a test can wait
    until the server has reached it (say, a wait on its clock) instead of sleeping.

    The method is replaced on that instance only; the original still runs.
    """

    def __init__(self, owner: object, name: str) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._changed = threading.Condition()
        original = getattr(owner, name)

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            with self._changed:
                self.calls.append(args)
                self._changed.notify_all()
            return await original(*args, **kwargs)

        setattr(owner, name, recorded)

    def wait(self, count: int = 1, *, timeout_s: float = 30.0) -> list[tuple[Any, ...]]:
        """The calls so far, once there are at least ``count`` of them."""
        __tracebackhide__ = True
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.calls) >= count, timeout_s):
                raise AssertionError(
                    f"expected {count} call(s) within {timeout_s:g} s; got {self.calls!r}"
                )
            return list(self.calls)


def poll_until_ended(client: httpx.Client, pid: str) -> dict[str, Any]:
    """Poll until terminal (a poll never waits for a render)."""
    from wavespeed_mock.contracts import terminal_statuses

    answers: list[dict[str, Any]] = []

    def ended() -> bool:
        answers.append(client.get(f"/api/v3/predictions/{pid}/result").json()["data"])
        return answers[-1]["status"] in terminal_statuses()  # the contract's set

    wait_until(ended, timeout_s=120, what=f"{pid} terminal")
    return answers[-1]


def start_serve(data: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    """``wavespeed-mock serve`` on a free port; None if that port was taken meanwhile."""
    # The command cannot report a port the OS chose (--port 0), so a port is picked
    # here and can be taken by another process before the server binds it.
    port = free_port()
    env = {**os.environ, "WAVESPEED_MOCK_PROFILE": "instant"}
    with (data / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wavespeed_mock.mock_server.cli.main",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data),
                "--api-key",
                "cli-key",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            text = (data / "server.log").read_text()
            assert "address already in use" in text.lower(), text
            return None
        try:
            if httpx.get(url + "/_mock/health", timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)


def serve_in_subprocess(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    """:func:`start_serve`, tried on up to five ports (one may be taken meanwhile)."""
    __tracebackhide__ = True
    for _ in range(5):
        started = start_serve(data)
        if started is not None:
            return started
    pytest.fail("every port tried was taken before the server could bind it")
