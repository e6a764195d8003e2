"""Sync mode: the submit waits for the result, or answers the 5004 timeout."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import httpx
import pytest
from wavespeed_mock.mock_server.http.live import LiveServer

from .._fakes import FakeEngine
from .._support import T2V, CallRecorder, in_thread, wait_until
from ..conftest import AUTH, StartServer


def sync_submit(server: LiveServer) -> dict[str, Any]:
    response = httpx.post(
        server.url + T2V,
        json={"prompt": "p", "enable_sync_mode": True},
        headers=AUTH,
        timeout=60,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def clock(server: LiveServer, **body: float) -> None:
    response = httpx.post(server.url + "/_mock/clock", json=body)
    assert response.status_code == 200, response.text


def test_sync_submit_returns_the_completed_envelope(start_server: StartServer) -> None:
    server = start_server(profile="fast", sync_wait_s=30)
    data = sync_submit(server)
    # Under the fast profile a task reads "completed" only once the server's clock
    # has passed its schedule, so this answer waited it out (one that did not
    # would say "processing", with code 5004 after a timeout).
    assert data["status"] == "completed" and data["outputs"]


def test_sync_timeout_answers_5004_and_the_task_goes_on(
    start_server: StartServer,
) -> None:
    engine = FakeEngine()
    engine.gate.clear()  # the render cannot finish before the sync wait ends
    server = start_server(engine=engine, profile="instant", sync_wait_s=0.3)
    data = sync_submit(server)
    assert data["status"] == "processing" and data["code"] == 5004
    assert (
        data["error"]
        == "Sync mode timed out after 0.3 seconds. The prediction is still processing asynchronously."
    )
    engine.gate.set()
    wait_until(  # a poll never waits for the clip
        lambda: server.service.get(data["id"]).outcome_known, what="the render ended"
    )
    polled = httpx.get(data["urls"]["get"], headers=AUTH, timeout=90).json()["data"]
    assert polled["status"] == "completed"


def only_prediction_rendered(server: LiveServer) -> bool:
    predictions = server.service.store.all()
    return len(predictions) == 1 and predictions[0].outcome_known


def test_sync_wait_on_a_virtual_clock_ends_when_the_clock_moves(
    start_server: StartServer,
) -> None:
    server = start_server(profile="fast", virtual_clock=True, sync_wait_s=90)
    answer: Future[dict[str, Any]] = in_thread(lambda: sync_submit(server))
    wait_until(lambda: only_prediction_rendered(server), what="the render finished")
    assert not answer.done(), "a frozen clock holds the sync wait"
    clock(server, advance=3)
    assert answer.result(timeout=30)["status"] == "completed"


def test_sync_timeout_on_a_virtual_clock(start_server: StartServer) -> None:
    server = start_server(profile="realistic", virtual_clock=True, sync_wait_s=60)
    sleeps = CallRecorder(server.service.clock, "sleep_until")
    answer: Future[dict[str, Any]] = in_thread(lambda: sync_submit(server))
    # The sync wait sleeps on the server's clock (again, if the render ends first).
    calls = sleeps.wait()
    [p] = server.service.store.all()
    assert [deadline for (deadline,) in calls] == [
        pytest.approx(p.created_at + 60)
    ] * len(calls)
    clock(server, advance=59)
    assert not answer.done(), "the sync wait lasts 60 s of the server's clock"
    clock(server, advance=2)
    data = answer.result(timeout=30)
    assert data["status"] == "processing" and data["code"] == 5004
