"""The control API's handlers on their own: called with a request, no server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from wavespeed_mock.mock_server.errors import ApiError
from wavespeed_mock.mock_server.http.control import ControlHandlers

from .._fakes import FakeEngine
from .._support import (
    PROMPT,
    T2V,
    answer_of,
    asgi_request,
    make_server,
    poll_until_terminal,
    running,
    wait_for,
)


def test_the_clock_moves_only_once_virtual(tmp_path: Path) -> None:
    control = ControlHandlers(make_server(tmp_path / "data"))
    with pytest.raises(ApiError) as real:
        asyncio.run(control.clock(asgi_request("POST", "/", {"advance": 5})))
    assert real.value.status == 409
    before = answer_of(
        asyncio.run(control.clock(asgi_request("POST", "/", {"virtual": True})))
    )
    after = answer_of(
        asyncio.run(control.clock(asgi_request("POST", "/", {"advance": 5})))
    )
    assert after["clock"]["virtual"] is True
    assert after["clock"]["now"] == pytest.approx(before["clock"]["now"] + 5)


def test_a_profile_that_does_not_exist_is_400_naming_the_field(tmp_path: Path) -> None:
    control = ControlHandlers(make_server(tmp_path / "data"))
    with pytest.raises(ApiError) as refused:
        asyncio.run(control.profile(asgi_request("POST", "/", {"profile": "warp"})))
    assert refused.value.status == 400 and "$.profile" in str(refused.value)
    state = answer_of(
        asyncio.run(control.profile(asgi_request("POST", "/", {"profile": "fast"})))
    )
    assert state["profile"] == "fast"


@pytest.mark.anyio
async def test_each_task_says_where_and_when_its_render_ran(tmp_path: Path) -> None:
    server = make_server(tmp_path / "data")
    engine = server.service.engine
    assert isinstance(engine, FakeEngine)
    engine.gate.clear()  # the render begins and waits
    engine.device = "cuda:7"

    def render_of(items: list[dict[str, Any]], pid: str) -> dict[str, Any]:
        [item] = [i for i in items if i["id"] == pid]
        found: dict[str, Any] = item["render"]
        return found

    async with running(server) as client:
        pid = (await client.post(T2V, json=PROMPT)).json()["data"]["id"]
        await wait_for(lambda: len(engine.jobs) == 1)
        listed = (await client.get("/_mock/predictions")).json()["data"]["items"]
        # An engine that reports no start (this one, the synthetic engine) has
        # its start stored with its outcome: nothing is known yet.
        assert render_of(listed, pid) == {
            "worker": None, "device": None, "attempts": 0, "started_at": None,
            "rendered_at": None, "queued_ms": None, "render_ms": None,
        }  # fmt: skip

        engine.gate.set()
        await poll_until_terminal(client, pid)
        listed = (await client.get("/_mock/predictions")).json()["data"]["items"]
        done = render_of(listed, pid)
        assert done["worker"] == "this process" and done["attempts"] == 1
        assert done["device"] == "cuda:7"  # as the engine named it
        assert done["started_at"] is not None and done["rendered_at"] is not None
        assert done["queued_ms"] >= 0 and done["render_ms"] >= 0
        # the answers were checked against the contract (running() asserts it)
