"""Every wire scenario driven through the npm SDK (``wavespeed`` 0.3.2) under node.

What is asserted follows the SDK's source (``dist/api/client.js``): a submit is
one ``fetch`` whose failure (a network error, an abort at ``timeout``, any
non-2xx) is a ``WavespeedSubmissionException``, never retried; a result poll is
retried on 429/500/502/503/504 and on fetch's TypeError/AbortError; and,
unlike the Python SDK, ``run`` with ``maxRetries > 0`` re-runs the whole task
(a second POST) after a poll error whose text says "HTTP 5", "429",
"timeout" or "connection". Skipped with a reason where node or npm is missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from wavespeed_mock.mock_server.http.live import LiveServer

from ..._support import wait_until
from ...conftest import StartServer, run_node

# Servers whose tasks complete at their first poll whatever the machine's load
# (lazy_renders: no render thread to wait for), so that the poll counts below are
# exact; a clip is still made when it is downloaded. (A render not done by the
# first clean poll made one more poll: a flake on a busy machine.)
pytestmark = [pytest.mark.sdk, pytest.mark.server_settings(lazy_renders=True)]

T2V_MODEL = "character-ai/ovi/text-to-video"
SUBMIT = "/api/v3/" + T2V_MODEL

# One driver for every case: ACTION and its JSON arguments in the environment,
# the outcome as the last line of stdout.
DRIVER = """
const { Client } = require("wavespeed");
const args = JSON.parse(process.env.ARGS || "{}");
const client = new Client("k", { baseUrl: process.env.BASE_URL, retryInterval: 0.01,
                                 ...(args.client || {}) });
const input = { prompt: "p", seed: 1 };
const report = (value) => console.log("\\n" + JSON.stringify(value));
const failed = (err) => report({ error: String(err && err.message || err),
                                 name: err && err.constructor && err.constructor.name });
const actions = {
  run: () => client.run(process.env.MODEL, input, { pollInterval: 0.01, ...args.run }),
  runNoThrow: () => client.runNoThrow(process.env.MODEL, input,
                                      { pollInterval: 0.01, ...args.run }),
  upload: () => client.upload(args.file).then((url) => ({ url })),
  fetch: () => fetch(args.url).then(async (r) => ({ status: r.status, text: await r.text() })),
};
actions[process.env.ACTION]().then(report, failed);
"""


def node(sdk: Path, server: LiveServer, action: str, **args: Any) -> dict[str, Any]:
    env = {
        "BASE_URL": server.url,
        "MODEL": T2V_MODEL,
        "ACTION": action,
        "ARGS": json.dumps(args),
    }
    return run_node(sdk, "driver.js", DRIVER, env)


def scenario(server: LiveServer, **body: Any) -> None:
    response = httpx.post(server.url + "/_mock/scenarios", json=body)
    assert response.status_code == 200, response.text


def journal(server: LiveServer) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = httpx.get(server.url + "/_mock/journal").json()[
        "data"
    ]["items"]
    return items


def submits(server: LiveServer) -> int:
    return sum(
        1 for e in journal(server) if e["method"] == "POST" and e["path"] == SUBMIT
    )


def polls(server: LiveServer) -> list[int]:
    return [e["status"] for e in journal(server) if e["path"].endswith("/result")]


# -- submits --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_submit_error_is_a_submission_exception_never_retried(
    start_server: StartServer, wavespeed_npm_sdk: Path, status: int
) -> None:
    server = start_server()
    scenario(server, submit_error=status)
    outcome = node(wavespeed_npm_sdk, server, "run", client={"maxRetries": 3})
    assert outcome["name"] == "WavespeedSubmissionException"
    assert f"HTTP {status}" in outcome["error"]
    assert "will not retry the POST" in outcome["error"]
    assert submits(server) == 1 and len(server.service.store) == 0


@pytest.mark.parametrize("mode", ["reset", "timeout"])
def test_lost_answer_is_a_submission_exception_and_the_task_exists(
    start_server: StartServer, wavespeed_npm_sdk: Path, mode: str
) -> None:
    server = start_server()
    scenario(server, lost_answer=mode)
    # generous: under load, node may take seconds before its first request leaves
    run = {"timeout": 10} if mode == "timeout" else {}
    outcome = node(wavespeed_npm_sdk, server, "run", client={"maxRetries": 3}, run=run)
    assert outcome["name"] == "WavespeedSubmissionException"
    # A held answer is journalled once the server sees the client leave.
    wait_until(lambda: submits(server) == 1, what="the lost submit journalled")
    [p] = server.service.store.all()
    assert server.service.get(p.id).outcome_known


def test_sync_gateway_timeout(
    start_server: StartServer, wavespeed_npm_sdk: Path
) -> None:
    server = start_server()
    scenario(server, sync_gateway_timeout=True)
    outcome = node(wavespeed_npm_sdk, server, "run", run={"enableSyncMode": True})
    assert outcome["name"] == "WavespeedSubmissionException"
    assert "HTTP 504" in outcome["error"] and "Gateway Time-out" in outcome["error"]
    assert submits(server) == 1 and len(server.service.store) == 1


# -- polls ------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [{"gateway_error": 503, "error_body": "html"},
                                   {"gateway_error": 502, "error_body": "empty"},
                                   {"connection_fault": "reset"},
                                   {"connection_fault": "empty"},
                                   {"connection_fault": "dribble",
                                    "dribble_bytes": 256, "dribble_interval_ms": 5}])  # fmt: skip
def test_poll_faults_are_retried(
    start_server: StartServer, wavespeed_npm_sdk: Path, fault: dict[str, Any]
) -> None:
    server = start_server()
    scenario(server, scope="next", count=2, routes=["result"], **fault)
    outcome = node(wavespeed_npm_sdk, server, "run")
    assert outcome["outputs"][0].endswith(".mp4"), outcome
    assert submits(server) == 1
    expected = 1 if fault.get("connection_fault") == "dribble" else 3
    assert len(polls(server)) == expected


def test_a_malformed_chunk_on_a_poll_escapes_unretried(
    start_server: StartServer, wavespeed_npm_sdk: Path
) -> None:
    # fetch resolves on the head; reading the body then fails outside the
    # SDK's retry loop, and the error's text names no retryable cause.
    server = start_server()
    scenario(
        server,
        scope="next",
        count=1,
        connection_fault="malformed_chunk",
        routes=["result"],
    )
    outcome = node(wavespeed_npm_sdk, server, "run", client={"maxRetries": 2})
    assert "error" in outcome, outcome
    assert len(polls(server)) == 1 and submits(server) == 1


def test_poll_errors_past_the_budget_rerun_the_task_only_with_max_retries(
    start_server: StartServer, wavespeed_npm_sdk: Path
) -> None:
    server = start_server()
    scenario(server, gateway_error=502, routes=["result"])
    once = node(wavespeed_npm_sdk, server, "run", client={"maxConnectionRetries": 1})
    assert "HTTP 502" in once["error"] and submits(server) == 1
    twice = node(
        wavespeed_npm_sdk,
        server,
        "run",
        client={"maxConnectionRetries": 1, "maxRetries": 1},
    )
    # The JS SDK's task-level retry sends a second POST (a second task, a
    # second charge); the Python SDK re-runs only a task reported failed.
    assert "HTTP 502" in twice["error"]
    assert submits(server) == 1 + 2
    assert len(server.service.store) == 3


# -- uploads, outputs, timestamps -------------------------------------------------------


def png(path: Path) -> Path:
    Image.new("RGB", (32, 24), (10, 200, 30)).save(path, format="PNG")
    return path


def test_upload_ticket_and_put_failures(
    start_server: StartServer, wavespeed_npm_sdk: Path, tmp_path: Path
) -> None:
    server = start_server()
    file = str(png(tmp_path / "pic.png"))
    scenario(server, scope="next", count=1, upload_ticket_error=503)
    ticket = node(wavespeed_npm_sdk, server, "upload", file=file)
    assert "Failed to upload file: HTTP 503" in ticket["error"]
    scenario(server, scope="next", count=1, upload_put_error=403)
    put = node(wavespeed_npm_sdk, server, "upload", file=file)
    assert "Failed to upload file: HTTP 403" in put["error"]
    assert "AccessDenied" in put["error"]
    assert node(wavespeed_npm_sdk, server, "upload", file=file)["url"]


def test_expired_output_url(start_server: StartServer, wavespeed_npm_sdk: Path) -> None:
    server = start_server(virtual_clock=True)
    scenario(server, output_ttl_s=60)
    [url] = node(wavespeed_npm_sdk, server, "run")["outputs"]
    assert node(wavespeed_npm_sdk, server, "fetch", url=url)["status"] == 200
    httpx.post(server.url + "/_mock/clock", json={"advance": 61})
    expired = node(wavespeed_npm_sdk, server, "fetch", url=url)
    assert expired["status"] == 403 and "AccessDenied" in expired["text"]


@pytest.mark.parametrize("digits", [0, 9])
def test_timestamp_styles_reach_run_no_throw(
    start_server: StartServer, wavespeed_npm_sdk: Path, digits: int
) -> None:
    server = start_server()
    scenario(server, timestamp_digits=digits)
    outcome = node(
        wavespeed_npm_sdk, server, "runNoThrow", run={"enableSyncMode": True}
    )
    created_at = outcome["detail"]["createdAt"]
    fraction = created_at[len("2026-01-01T00:00:00") : -1]
    assert len(fraction) == (0 if digits == 0 else digits + 1), created_at


def test_these_servers_render_lazily(start_server: StartServer) -> None:
    assert start_server().service.settings.lazy_renders  # the module's mark
