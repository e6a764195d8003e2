"""The poll lane answers a plain result poll as the stack would, and hands
every other request to the stack untouched (in process, no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send
from wavespeed_mock.mock_server.assembly import MockServer
from wavespeed_mock.mock_server.http.app import PREDICTION_ID, create_app
from wavespeed_mock.mock_server.http.poll_lane import PollLane, wanted

from .._support import AUTH, PROMPT, T2V, make_server, poll_until_terminal

pytestmark = pytest.mark.anyio


class Downstream:
    """The stack behind the lane, counting the requests that reach it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@asynccontextmanager
async def lane_and_stack(
    server: MockServer,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Downstream]]:
    """A client of the lane (in front of the stack) and one of the stack alone."""
    app = create_app(server=server)  # check_responses: no lane inside
    stack = Downstream(app)
    lane = PollLane(
        stack,
        service=server.service,
        settings=server.settings,
        journal=server.journal,
        id_shape=PREDICTION_ID,
        fixed=frozenset({"delete"}),
    )
    base = server.service.base_url
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=lane), base_url=base, headers=AUTH
        ) as via_lane,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base, headers=AUTH
        ) as direct,
    ):
        yield via_lane, direct, stack


async def completed(client: httpx.AsyncClient) -> str:
    answer = await client.post(T2V, json=PROMPT)
    assert answer.status_code == 200, answer.text
    pid: str = answer.json()["data"]["id"]
    await poll_until_terminal(client, pid)
    return pid


async def test_a_plain_poll_gets_the_stacks_answer_without_the_stack(
    tmp_path: Path,
) -> None:
    server = make_server(tmp_path)
    async with lane_and_stack(server) as (via_lane, direct, stack):
        pid = await completed(direct)
        journaled = len(server.journal.entries())
        stack.paths.clear()

        lane_answer = await via_lane.get(f"/api/v3/predictions/{pid}/result")
        stack_answer = await direct.get(f"/api/v3/predictions/{pid}/result")

        assert stack.paths == []  # the lane answered
        assert lane_answer.status_code == stack_answer.status_code == 200
        assert lane_answer.content == stack_answer.content
        for header in ("content-type", "content-length"):
            assert lane_answer.headers[header] == stack_answer.headers[header]
        # journaled as the stack journals it, before the answer left
        entries = server.journal.entries()[journaled:]
        assert [(e["method"], e["path"], e["status"]) for e in entries] == [
            ("GET", f"/api/v3/predictions/{pid}/result", 200)
        ] * 2
        assert server.service.contract_violations == []


def _other(pid: str) -> list[tuple[str, str, dict[str, str]]]:
    """Requests the lane must leave to the stack: (method, path, headers)."""
    result = f"/api/v3/predictions/{pid}/result"
    return [
        ("POST", result, {}),
        ("GET", f"/api/v2/predictions/{pid}/result", {}),
        ("GET", f"/api/v3/predictions/{pid}", {}),
        ("GET", result, {"host": "rebind.example"}),
        ("GET", result, {"authorization": ""}),
        ("GET", result, {"authorization": "Basic a2V5"}),
        ("GET", "/api/v3/predictions/unknown-id/result", {}),
        ("GET", "/api/v3/predictions/delete/result", {}),
        ("GET", "/api/v3/predictions/bad.id/result", {}),
    ]


@pytest.mark.parametrize("case", range(len(_other("x"))))
async def test_anything_but_a_plain_poll_goes_to_the_stack(
    tmp_path: Path, case: int
) -> None:
    server = make_server(tmp_path)
    async with lane_and_stack(server) as (via_lane, direct, stack):
        pid = await completed(direct)
        method, path, headers = _other(pid)[case]
        stack.paths.clear()
        lane_answer = await via_lane.request(method, path, headers=headers)
        stack_answer = await direct.request(method, path, headers=headers)
        assert len(stack.paths) == 1  # handed on once, whatever the answer
        assert lane_answer.status_code == stack_answer.status_code
        assert lane_answer.json()["code"] == stack_answer.json()["code"]


async def test_an_unaccepted_key_goes_to_the_stack(tmp_path: Path) -> None:
    server = make_server(tmp_path, api_keys=("test-key",))
    async with lane_and_stack(server) as (via_lane, direct, stack):
        pid = await completed(direct)
        stack.paths.clear()
        answer = await via_lane.get(
            f"/api/v3/predictions/{pid}/result",
            headers={"authorization": "Bearer other"},
        )
        assert answer.status_code == 401
        assert len(stack.paths) == 1


async def test_a_poll_under_a_scenario_goes_to_the_stack(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    async with lane_and_stack(server) as (via_lane, direct, stack):
        pid = await completed(direct)
        # a gateway page on polls: the wire layer's answer, never the service's
        body: dict[str, Any] = {"gateway_error": 502, "routes": ["result"]}
        assert (await direct.post("/_mock/scenarios", json=body)).status_code == 200
        stack.paths.clear()
        answer = await via_lane.get(f"/api/v3/predictions/{pid}/result")
        assert stack.paths == [f"/api/v3/predictions/{pid}/result"]
        assert answer.status_code == 502


def test_the_app_has_the_lane_unless_every_answer_must_be_seen(
    tmp_path: Path,
) -> None:
    def lanes(**options: Any) -> int:
        app = create_app(server=make_server(tmp_path, **options))
        return sum(m.cls is PollLane for m in app.user_middleware)

    assert lanes(check_responses=False) == 1
    assert lanes(check_responses=True) == 0
    assert wanted(make_server(tmp_path).settings, recording=True) is False
