"""Sync mode: the submit waits for the result, or answers the 5004 timeout."""

from __future__ import annotations

import threading
import time

import httpx
from wavespeed_mock.mock_server.http.live import LiveServer

from ._fakes import FakeEngine
from .conftest import AUTH, T2V, StartServer


def test_sync_submit_returns_the_completed_envelope(start_server: StartServer) -> None:
    server = start_server(profile="fast", sync_wait_s=30)
    started = time.monotonic()
    response = httpx.post(
        server.url + T2V,
        json={"prompt": "p", "enable_sync_mode": True},
        headers=AUTH,
        timeout=60,
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["status"] == "completed" and data["outputs"]
    assert (
        time.monotonic() - started >= 2.0
    )  # it waited out the fast profile's schedule


def test_sync_timeout_answers_5004_and_the_task_goes_on(
    start_server: StartServer,
) -> None:
    engine = FakeEngine()
    engine.gate.clear()
    server = start_server(engine=engine, profile="instant", sync_wait_s=0.3)
    response = httpx.post(
        server.url + T2V, json={"prompt": "p", "enable_sync_mode": True}, headers=AUTH
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["status"] == "processing" and data["code"] == 5004
    assert (
        data["error"]
        == "Sync mode timed out after 0.3 seconds. The prediction is still processing asynchronously."
    )
    engine.gate.set()
    polled = httpx.get(data["urls"]["get"], headers=AUTH).json()["data"]
    assert polled["status"] == "completed"


def sync_submit_in_background(
    server: LiveServer,
) -> tuple[threading.Thread, dict[str, object]]:
    """A sync-mode submit running in a thread; its answer's data lands in the dict."""
    answer: dict[str, object] = {}

    def call() -> None:
        r = httpx.post(
            server.url + T2V,
            json={"prompt": "p", "enable_sync_mode": True},
            headers=AUTH,
            timeout=60,
        )
        answer.update(r.json()["data"])

    thread = threading.Thread(target=call)
    thread.start()
    return thread, answer


def test_sync_wait_on_a_virtual_clock_ends_when_the_clock_moves(
    start_server: StartServer,
) -> None:
    server = start_server(profile="fast", virtual_clock=True, sync_wait_s=90)
    thread, answer = sync_submit_in_background(server)
    time.sleep(0.5)
    assert thread.is_alive(), "a frozen clock holds the sync wait"
    httpx.post(server.url + "/_mock/clock", json={"advance": 3})
    thread.join(10)
    assert answer["status"] == "completed"


def test_sync_timeout_on_a_virtual_clock(start_server: StartServer) -> None:
    server = start_server(profile="realistic", virtual_clock=True, sync_wait_s=60)
    thread, answer = sync_submit_in_background(server)
    time.sleep(0.3)
    httpx.post(server.url + "/_mock/clock", json={"advance": 61})
    thread.join(10)
    assert answer["status"] == "processing" and answer["code"] == 5004
