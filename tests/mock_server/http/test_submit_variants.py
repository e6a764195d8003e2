"""Documented variants of a submit (base64 outputs, the webhook URL in the body),
and renders that never hold up the answers to requests."""

from __future__ import annotations

import base64
import json
import os
import sys
import threading

import httpx
import pytest
from wavespeed_mock.contracts import validate
from wavespeed_mock.mock_server import RenderJob, RenderResult
from wavespeed_mock.mock_server.http.live import LiveServer

from .._fakes import FAKE_MP4, FakeEngine
from .._support import T2V, Receiver, poll_until_ended, wait_until
from ..conftest import AUTH, StartServer

BASE64_WITH_WEBHOOK = (
    "webhook callback does not support base64 output, "
    "please use the normal API to use base64 output"
)  # the doc's words, https://wavespeed.ai/docs/base64-output


def test_base64_output_answers_the_clip_itself(client: httpx.Client) -> None:
    submitted = client.post(
        T2V, json={"prompt": "waves", "enable_base64_output": True}
    ).json()["data"]
    assert submitted["outputs"] == []
    data = poll_until_ended(client, submitted["id"])
    assert data["status"] == "completed"
    [encoded] = data["outputs"]  # type: ignore[misc]
    # Naked base64: no data: prefix, no line breaks; it decodes to the file.
    assert isinstance(encoded, str) and not encoded.startswith("data:")
    assert "\n" not in encoded
    assert base64.b64decode(encoded, validate=True) == FAKE_MP4
    # The same task read through the other poll path and the history.
    other = client.get(f"/api/v3/predictions/{submitted['id']}").json()["data"]
    assert other["outputs"] == [encoded]
    history = client.post("/api/v3/predictions", json={}).json()["data"]["items"]
    assert history[0]["outputs"][0].endswith(f"/outputs/{submitted['id']}.mp4")


def test_base64_output_in_sync_mode(client: httpx.Client) -> None:
    answer = client.post(
        T2V,
        json={
            "prompt": "waves",
            "enable_sync_mode": True,
            "enable_base64_output": True,
        },
    )
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert data["status"] == "completed"
    assert [base64.b64decode(o) for o in data["outputs"]] == [FAKE_MP4]


def test_without_the_flag_outputs_stay_urls(
    server: LiveServer, client: httpx.Client
) -> None:
    pid = client.post(
        T2V, json={"prompt": "waves", "enable_base64_output": False}
    ).json()["data"]["id"]
    assert poll_until_ended(client, pid)["outputs"] == [
        f"{server.url}/outputs/{pid}.mp4"
    ]


@pytest.mark.parametrize("where", ["query", "body"])
def test_base64_output_with_a_webhook_is_refused_as_documented(
    client: httpx.Client, where: str
) -> None:
    hook = "http://127.0.0.1:9/hook"
    body: dict[str, object] = {"prompt": "waves", "enable_base64_output": True}
    params = {}
    if where == "query":
        params["webhook"] = hook
    else:
        body["webhook_url"] = hook
    answer = client.post(T2V, json=body, params=params)
    assert answer.status_code == 400
    error = answer.json()
    assert error["error"] == BASE64_WITH_WEBHOOK  # the documented body's field
    assert error["code"] == 400
    assert "$.enable_base64_output" in error["message"]
    validate("error.json", error)
    # Nothing was created or charged.
    history = client.post("/api/v3/predictions", json={}).json()["data"]
    assert history["total"] == 0


def test_base64_flag_must_be_a_boolean(client: httpx.Client) -> None:
    answer = client.post(T2V, json={"prompt": "waves", "enable_base64_output": "yes"})
    assert answer.status_code == 400
    assert "$.enable_base64_output" in answer.json()["message"]


def test_webhook_url_in_the_body_is_delivered_to(start_server: StartServer) -> None:
    server = start_server()
    with (
        Receiver() as receiver,
        httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client,
    ):
        pid = client.post(
            T2V, json={"prompt": "waves", "webhook_url": receiver.url}
        ).json()["data"]["id"]
        wait_until(lambda: receiver.deliveries, what="a delivery to webhook_url")
        headers, raw = receiver.deliveries[0]
        assert json.loads(raw)["id"] == pid
        assert headers["webhook-id"]


def test_the_query_webhook_wins_over_the_body(start_server: StartServer) -> None:
    server = start_server()
    with (
        Receiver() as by_query,
        Receiver() as by_body,
        httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client,
    ):
        client.post(
            T2V,
            params={"webhook": by_query.url},
            json={"prompt": "waves", "webhook_url": by_body.url},
        )
        wait_until(lambda: by_query.deliveries, what="a delivery to ?webhook=")
        assert by_body.deliveries == []


def test_webhook_url_must_be_an_http_url(client: httpx.Client) -> None:
    answer = client.post(T2V, json={"prompt": "waves", "webhook_url": "ftp://x/y"})
    assert answer.status_code == 400
    assert "$.webhook_url" in answer.json()["message"]


class NiceRecordingEngine(FakeEngine):
    """Notes the CPU priority of the thread each render runs on."""

    def __init__(self) -> None:
        super().__init__()
        self.niceness: list[int] = []

    def render(self, job: RenderJob) -> RenderResult:
        self.niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return super().render(job)


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's"
)
def test_renders_run_at_a_lower_cpu_priority_than_requests(
    start_server: StartServer,
) -> None:
    engine = NiceRecordingEngine()
    server = start_server(engine=engine)
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        client.post(T2V, json={"prompt": "waves"})
    wait_until(lambda: engine.niceness, what="a render")
    assert engine.niceness[0] > os.getpriority(os.PRIO_PROCESS, 0)
