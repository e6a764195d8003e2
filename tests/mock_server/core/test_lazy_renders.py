"""lazy_renders: a task completes without its clip; the clip is made on demand."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor

import httpx
from wavespeed_mock.mock_server import RenderFailed

from .._fakes import FAKE_MP4, FakeEngine
from .._support import T2V, wait_until
from ..conftest import AUTH, StartServer


def submit(client: httpx.Client, **body: object) -> str:
    answer = client.post(T2V, json={"prompt": "waves", "seed": 1, **body})
    assert answer.status_code == 200, answer.text
    pid: str = answer.json()["data"]["id"]
    return pid


def test_a_task_completes_without_a_render_and_its_first_download_makes_it(
    start_server: StartServer,
) -> None:
    engine = FakeEngine()
    server = start_server(engine=engine, lazy_renders=True)
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        pid = submit(client)
        data = client.get(f"/api/v3/predictions/{pid}/result").json()["data"]
        assert data["status"] == "completed"  # on the first poll: no render to wait for
        assert engine.jobs == []  # nothing was rendered
        url = data["outputs"][0]
        with ThreadPoolExecutor(4) as pool:  # four downloads at once: one render
            answers = list(pool.map(lambda _: httpx.get(url, timeout=60), range(4)))
        assert [a.content for a in answers] == [FAKE_MP4] * 4
        assert len(engine.jobs) == 1
        assert httpx.get(url, timeout=60).content == FAKE_MP4
        assert len(engine.jobs) == 1  # made once


def test_base64_output_makes_the_clip_too(start_server: StartServer) -> None:
    engine = FakeEngine()
    server = start_server(engine=engine, lazy_renders=True)
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        pid = submit(client, enable_base64_output=True)
        data = client.get(f"/api/v3/predictions/{pid}/result").json()["data"]
        assert data["status"] == "completed"
        assert base64.b64decode(data["outputs"][0]) == FAKE_MP4


def test_a_clip_the_engine_cannot_make_is_a_503_and_the_task_stays_completed(
    start_server: StartServer,
) -> None:
    engine = FakeEngine()
    engine.fail_with = RenderFailed("no GPU today", code=5003)
    server = start_server(engine=engine, lazy_renders=True)
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        pid = submit(client)
        url = client.get(f"/api/v3/predictions/{pid}/result").json()["data"]["outputs"][
            0
        ]
        answer = httpx.get(url, timeout=60)
        assert answer.status_code == 503 and "no GPU today" in answer.json()["message"]
        data = client.get(f"/api/v3/predictions/{pid}/result").json()["data"]
        assert data["status"] == "completed"  # a status never goes back


def test_without_the_setting_the_render_runs_at_submit(
    start_server: StartServer,
) -> None:
    engine = FakeEngine()
    server = start_server(engine=engine)
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as client:
        submit(client)
    wait_until(lambda: len(engine.jobs) == 1, what="the render, queued at submit")
