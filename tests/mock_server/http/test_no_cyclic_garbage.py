"""No request leaves cyclic garbage behind (issue 26).

A cycle made per request is freed only by the cyclic collector; any scheme
that keeps full collections off the stored predictions (``gc.freeze()``) can
turn it into a leak. Each kind of request runs ``N`` times between two
collections with ``gc.DEBUG_SAVEALL``; what the collector found must be empty,
except asyncio's own cycle of a closed socket transport (the standard library's,
one per new connection, freed by the next young collection).
"""

from __future__ import annotations

import gc
import http.client
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import wavespeed_mock
from wavespeed_mock.mock_server.http.live import LiveServer

from .._support import T2V, Receiver, wait_until
from ..conftest import StartServer

N = 30
KEY = "test-key"
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
# asyncio's transport of a closed connection refers to itself through its bound
# read callback; these are the objects of that cycle, and nothing else may be there.
ASYNCIO_TRANSPORT = {
    "asyncio.selector_events._SelectorSocketTransport",
    "asyncio.trsock.TransportSocket",
    "socket.socket",
    "builtins.method",
    "builtins.tuple",
    "builtins.dict",
}


PACKAGE = str(Path(wavespeed_mock.__path__[0]).resolve())  # type: ignore[attr-defined]


def ours(thing: object) -> bool:
    """An object of this project's: its type, or the code it runs, is in the package."""
    if type(thing).__module__.startswith("wavespeed_mock"):
        return True
    code = (
        getattr(thing, "f_code", None)
        or getattr(thing, "cr_code", None)
        or getattr(thing, "__code__", None)
    )
    return code is not None and str(Path(code.co_filename).resolve()).startswith(
        PACKAGE
    )


def garbage_of(
    request: Callable[[], object],
    *,
    new_connections: bool = False,
    only_ours: bool = False,
) -> list[str]:
    """What ``N`` calls of ``request`` left for the cyclic collector to free."""
    for _ in range(3):  # warm caches, lazy imports, pools
        request()
    gc.collect()
    gc.garbage.clear()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(N):
            request()
        gc.collect()
    finally:
        gc.set_debug(0)
    found = [
        f"{type(o).__module__}.{type(o).__qualname__}"
        for o in gc.garbage
        if ours(o) or not only_ours
    ]
    gc.garbage.clear()
    allowed = ASYNCIO_TRANSPORT if new_connections else set()
    return sorted({name for name in found if name not in allowed})


class Client:
    """Plain http.client on one kept-alive connection (it makes no cycles itself)."""

    def __init__(self, server: LiveServer) -> None:
        self.address = server.url.split("//", 1)[1]
        self.conn = http.client.HTTPConnection(self.address, timeout=30)

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body)
        self.conn.request(
            method, path, body=data, headers=HEADERS if headers is None else headers
        )
        answer = self.conn.getresponse()
        return answer.status, answer.read()

    def control(self, path: str, body: dict[str, Any]) -> None:
        status, data = self(
            "POST", path, body, headers={"Content-Type": "application/json"}
        )
        assert status == 200, data

    def fresh(self, method: str, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.address, timeout=30)
        try:
            conn.request(method, path, headers=HEADERS)
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def submit(self, body: dict[str, Any] | None = None, query: str = "") -> str:
        status, data = self("POST", T2V + query, body or {"prompt": "waves", "seed": 1})
        assert status == 200, data
        pid: str = json.loads(data)["data"]["id"]
        return pid

    def result(self, pid: str) -> dict[str, Any]:
        status, data = self("GET", f"/api/v3/predictions/{pid}/result")
        assert status == 200, data
        answer: dict[str, Any] = json.loads(data)["data"]
        return answer

    def ended(self, pid: str) -> dict[str, Any]:
        answers: list[dict[str, Any]] = []
        wait_until(
            lambda: (
                answers.append(self.result(pid))
                or answers[-1]["status"] in ("completed", "failed")
            ),
            timeout_s=120,
            what=f"{pid} ended",
        )
        return answers[-1]


@pytest.fixture
def connect(start_server: StartServer) -> Iterator[Callable[..., Client]]:
    """A client of a new live server started with these settings."""
    clients: list[Client] = []

    def start(**settings: Any) -> Client:
        clients.append(Client(start_server(api_keys=(KEY,), **settings)))
        return clients[-1]

    yield start
    for c in clients:
        c.conn.close()


@pytest.fixture
def client(connect: Callable[..., Client]) -> Client:
    return connect()


def test_submits_polls_and_errors_leave_no_cycles(client: Client) -> None:
    done = client.ended(client.submit())
    output = "/" + done["outputs"][0].split("/", 3)[3]
    kinds: dict[str, Callable[[], object]] = {
        "submit": lambda: client.submit(),
        "poll completed": lambda: client.result(done["id"]),
        "poll unknown (404)": lambda: client(
            "GET", "/api/v3/predictions/" + "0" * 32 + "/result"
        ),
        "bad body (400)": lambda: client("POST", T2V, {"prompt": ""}),
        "no key (401)": lambda: client(
            "GET", f"/api/v3/predictions/{done['id']}/result", headers={}
        ),
        "not JSON (400)": lambda: client("POST", T2V, b"{nope"),
        "download": lambda: client("GET", output),
        "download, a range": lambda: client(
            "GET", output, headers={**HEADERS, "Range": "bytes=0-99"}
        ),
        "models": lambda: client("GET", "/api/v3/models"),
        "control state": lambda: client("GET", "/_mock/scenarios", headers={}),
    }
    left = {name: garbage_of(call) for name, call in kinds.items()}
    assert left == {name: [] for name in kinds}


def test_polls_in_every_state_leave_no_cycles(connect: Callable[..., Client]) -> None:
    client = connect(profile="fast", virtual_clock=True)
    created = client.submit()
    assert client.result(created)["status"] == "created"
    assert garbage_of(lambda: client.result(created)) == []
    client.control("/_mock/clock", {"advance": 1.0})
    wait_until(
        lambda: client.result(created)["status"] == "processing", what="processing"
    )
    assert garbage_of(lambda: client.result(created)) == []
    client.control("/_mock/scenarios", {"fail_code": 5003})
    failed = client.submit({"prompt": "fails", "seed": 2})
    client.control("/_mock/clock", {"advance": 60.0})
    assert client.ended(failed)["status"] == "failed"
    assert garbage_of(lambda: client.result(failed)) == []


def test_new_connections_and_disconnects_leave_no_cycles_of_ours(
    client: Client,
) -> None:
    pid = client.submit()
    assert (
        garbage_of(
            lambda: client.fresh("GET", f"/api/v3/predictions/{pid}/result"),
            new_connections=True,
        )
        == []
    )

    def leave_mid_body() -> None:
        with socket.create_connection(client.address.split(":")) as sock:  # type: ignore[arg-type]
            sock.sendall(
                f"POST {T2V} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
                'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"pro'.encode()
            )

    assert garbage_of(leave_mid_body, new_connections=True) == []


def test_scenario_faults_leave_no_cycles(client: Client) -> None:
    client.control("/_mock/scenarios", {"gateway_error": 503, "routes": ["result"]})
    pid = client.submit()
    assert garbage_of(lambda: client("GET", f"/api/v3/predictions/{pid}/result")) == []
    client("DELETE", "/_mock/scenarios", headers={})
    client.control("/_mock/scenarios", {"fail_code": 1200})
    assert garbage_of(lambda: client.submit()) == []
    client("DELETE", "/_mock/scenarios", headers={})
    client.control(
        "/_mock/scenarios", {"connection_fault": "reset", "routes": ["result"]}
    )

    def reset() -> None:
        with pytest.raises(ConnectionError):
            client.fresh("GET", f"/api/v3/predictions/{pid}/result")

    assert garbage_of(reset, new_connections=True) == []


def test_webhooks_and_uploads_leave_no_cycles(client: Client) -> None:
    with Receiver() as receiver:
        query = f"?webhook={receiver.url}"
        sent = 0

        def submit_and_deliver() -> None:
            nonlocal sent
            client.submit(query=query)
            sent += 1
            wait_until(lambda: len(receiver.deliveries) >= sent, what="delivered")

        # httpx's own cycles (its pool, anyio's cancel scopes) are not ours to remove
        assert garbage_of(submit_and_deliver, only_ours=True) == []
    boundary = "x" * 16
    png = _png()
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    upload_headers = {
        "Authorization": f"Bearer {KEY}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }

    def upload() -> None:
        status, data = client(
            "POST", "/api/v3/media/upload/binary", form, headers=upload_headers
        )
        assert status == 200, data

    assert garbage_of(upload) == []


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()
