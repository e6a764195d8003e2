"""The Go and Java SDKs' retry loops, reproduced as tiny httpx clients, against
the scenarios that make them bill a task twice (``docs/scenarios.md``, "What the
SDKs do").

No Go or Java toolchain is needed: each client below copies one loop of the SDK's
source, without its sleeps.

- Go (``WaveSpeedAI/wavespeed-go`` @ ``268f200``, ``api/client.go:245-279``): the
  submit POST is sent again on any transport error, ``maxConnectionRetries``
  (5, ``:193``) more times, so up to 6 POSTs. When the mock loses the first
  answer (``lost_answer: reset``), the re-POST creates and charges a second task.
- Java (``WaveSpeedAI/wavespeed-java`` @ ``3fc0ae7``, ``Client.java:353-358``,
  ``:460-478``, ``:560-587``): a poll's HTTP 5xx/429 is raised at once, and with
  ``maxRetries > 0`` ``run()`` submits the whole task again.

For contrast, the official Python SDK (``wavespeed`` 2.0.5) sends a submit once,
even with ``max_retries``, so a lost answer leaves exactly one task. The last
tests drive the npm SDK (``wavespeed`` 0.3.2) under node: its task-level retry
re-runs a task (a second POST) only when the error's text says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import wavespeed
from wavespeed_mock.mock_server.http.live import LiveServer

from ..._support import T2V, poll_until_ended
from ...conftest import StartServer, run_node

T2V_MODEL = "character-ai/ovi/text-to-video"
BODY = {"prompt": "waves", "seed": 1}
PRICE = 0.15  # Ovi's price per task in the mock's registry

# api/client.go:169,193: maxConnectionRetries defaults to 5 (so 6 attempts).
GO_MAX_CONNECTION_RETRIES = 5


def scenario(server: LiveServer, **body: Any) -> None:
    response = httpx.post(server.url + "/_mock/scenarios", json=body)
    assert response.status_code == 200, response.text


def balance(client: httpx.Client) -> float:
    answer = client.get("/api/v3/balance")
    assert answer.status_code == 200, answer.text
    return float(answer.json()["data"]["balance"])


def tasks(client: httpx.Client) -> list[dict[str, Any]]:
    """Every task the mock holds (``GET /_mock/predictions``), oldest first."""
    items: list[dict[str, Any]] = client.get("/_mock/predictions").json()["data"][
        "items"
    ]
    return items


def go_submit(client: httpx.Client) -> tuple[httpx.Response, int]:
    """The Go SDK's ``submit`` loop (``api/client.go:246-279``): re-POST on any
    transport error, up to ``GO_MAX_CONNECTION_RETRIES`` times; an HTTP answer,
    whatever its status, ends the loop. Returns the answer and the POSTs sent."""
    for retry in range(GO_MAX_CONNECTION_RETRIES + 1):
        try:
            return client.post(T2V, json=BODY), retry + 1
        except httpx.TransportError:
            if retry == GO_MAX_CONNECTION_RETRIES:
                raise
    raise AssertionError("unreachable")


def single_submit(client: httpx.Client) -> httpx.Response:
    """A submit sent once, as the Python and JS SDKs (and Java since ``0ddb11f``) do."""
    return client.post(T2V, json=BODY)


def java_run(client: httpx.Client, max_retries: int) -> tuple[dict[str, Any], int]:
    """The Java SDK's ``run`` loop (``Client.java:560-587``): submit once
    (``:272-274``), then poll; a poll's non-200 is raised at once (``:353-358``)
    and is "retryable" when it says HTTP 5xx or 429 (``:472-477``), so the
    whole task is submitted again. Returns the final task and the POSTs sent."""
    for attempt in range(max_retries + 1):
        submitted = client.post(T2V, json=BODY)
        assert submitted.status_code == 200, submitted.text
        pid = submitted.json()["data"]["id"]
        while True:
            polled = client.get(f"/api/v3/predictions/{pid}/result")
            if polled.status_code != 200:
                retryable = polled.status_code == 429 or polled.status_code >= 500
                if retryable and attempt < max_retries:
                    break  # run() goes round again: a new POST
                raise AssertionError(f"HTTP {polled.status_code}")
            data: dict[str, Any] = polled.json()["data"]
            if data["status"] not in ("created", "processing"):
                return data, attempt + 1
    raise AssertionError("unreachable")


def test_go_submit_retry_after_a_lost_answer_bills_two_tasks(
    server: LiveServer, client: httpx.Client
) -> None:
    """One logical call, two tasks, two charges: the first task's answer was
    lost, the re-POST made a second; the caller only ever learns the second id."""
    before = balance(client)
    scenario(server, scope="next", count=1, lost_answer="reset")

    answer, posts = go_submit(client)

    assert answer.status_code == 200, answer.text
    assert posts == 2
    made = tasks(client)
    assert len(made) == 2
    returned = answer.json()["data"]["id"]
    assert made[1]["id"] == returned
    orphan = made[0]["id"]  # created, charged, and its id never reached the caller
    assert orphan != returned
    assert {poll_until_ended(client, t["id"])["status"] for t in made} == {"completed"}
    assert before - balance(client) == pytest.approx(2 * PRICE)
    assert len(server.service.predictions()) == 2


def test_go_submit_retry_with_every_answer_lost_bills_six_tasks(
    server: LiveServer, client: httpx.Client
) -> None:
    """When every answer is lost, the Go loop sends 1 + 5 POSTs, raises, and
    leaves six charged tasks, none of whose ids the caller knows."""
    before = balance(client)
    scenario(server, lost_answer="reset")

    with pytest.raises(httpx.TransportError):
        go_submit(client)

    made = tasks(client)
    assert len(made) == GO_MAX_CONNECTION_RETRIES + 1
    assert before - balance(client) == pytest.approx(len(made) * PRICE)


def test_a_client_that_does_not_re_post_leaves_one_task(
    server: LiveServer, client: httpx.Client
) -> None:
    """The Python/JS SDKs' way: the lost answer is raised, nothing is re-sent,
    one task, one charge."""
    before = balance(client)
    scenario(server, scope="next", count=1, lost_answer="reset")

    with pytest.raises(httpx.TransportError):
        single_submit(client)

    [task] = tasks(client)
    assert poll_until_ended(client, task["id"])["status"] == "completed"
    assert before - balance(client) == pytest.approx(PRICE)


@pytest.mark.sdk
def test_the_python_sdk_does_not_re_post_a_lost_submit_even_with_max_retries(
    server: LiveServer, client: httpx.Client
) -> None:
    before = balance(client)
    scenario(server, scope="next", count=1, lost_answer="reset")
    sdk = wavespeed.Client(
        api_key="test-key", base_url=server.url, max_retries=3, retry_interval=0.01
    )

    with pytest.raises(RuntimeError, match="did not return a response"):
        sdk.run(T2V_MODEL, BODY, poll_interval=0.01)

    [task] = tasks(client)
    assert poll_until_ended(client, task["id"])["status"] == "completed"
    assert before - balance(client) == pytest.approx(PRICE)


def test_java_run_resubmits_after_a_poll_503_and_bills_two_tasks(
    server: LiveServer, client: httpx.Client
) -> None:
    """Java with ``maxRetries > 0``: one poll answered 503 turns into a second
    submit, so a second task, both completed and charged."""
    before = balance(client)
    scenario(
        server,
        scope="next",
        count=1,
        gateway_error=503,
        routes=["result"],
    )

    final, posts = java_run(client, max_retries=1)

    assert final["status"] == "completed"
    assert posts == 2
    made = tasks(client)
    assert len(made) == 2 and made[1]["id"] == final["id"]
    assert poll_until_ended(client, made[0]["id"])["status"] == "completed"
    assert before - balance(client) == pytest.approx(2 * PRICE)


# -- the npm SDK's task-level retry, for the table's npm column -------------------------

NPM_DRIVER = """
const { Client } = require("wavespeed");
const args = JSON.parse(process.env.ARGS);
const client = new Client("k", { baseUrl: process.env.BASE_URL, retryInterval: 0.01,
                                 maxConnectionRetries: 1, maxRetries: 1 });
client.run(process.env.MODEL, { prompt: "p", seed: 1 }, { pollInterval: 0.01, ...args })
  .then((value) => console.log("\\n" + JSON.stringify(value)),
        (err) => console.log("\\n" + JSON.stringify({ error: String(err.message),
                                                      name: err.constructor.name })));
"""


def npm_run(sdk: Path, server: LiveServer, **run: Any) -> dict[str, Any]:
    """``Client.run`` of the npm SDK with ``maxRetries: 1`` (one task-level retry)."""
    env = {"BASE_URL": server.url, "MODEL": T2V_MODEL, "ARGS": json.dumps(run)}
    return run_node(sdk, "retry_patterns.js", NPM_DRIVER, env)


@pytest.mark.sdk
@pytest.mark.parametrize(
    ("fault", "expected_tasks"),
    [
        ({"fail_code": 5000}, 1),  # "Internal error. Please retry later.": not retried
        ({"status": "cancelled"}, 1),
        ({"status": "timeout"}, 2),  # the error text says "timeout": re-run
        ({"connection_fault": "reset", "routes": ["result"]}, 1),  # "fetch failed"
        ({"connection_fault": "empty", "routes": ["result"]}, 1),
    ],
)
def test_npm_sdk_reruns_the_task_only_when_the_error_text_says_so(
    server: LiveServer,
    client: httpx.Client,
    wavespeed_npm_sdk: Path,
    fault: dict[str, Any],
    expected_tasks: int,
) -> None:
    """``_isRetryableError`` (``dist/api/client.js:438-455``) reads the error's
    text: "timeout", "connection", "http 5" or "429" re-runs the whole task.

    The text carries the task id (``Prediction failed (task_id: …)``), so a
    task whose random hex id happens to hold "429" (about 1 in 140) is re-run
    too, whatever its error: the SDK's rule, kept here rather than hidden."""
    scenario(server, **fault)

    outcome = npm_run(wavespeed_npm_sdk, server)

    assert "error" in outcome, outcome
    made = tasks(client)
    if "429" in made[0]["id"]:
        expected_tasks = 2  # maxRetries: 1 caps it at one re-run
    assert len(made) == expected_tasks, made


@pytest.mark.sdk
def test_npm_sdk_sync_timeout_is_not_rerun(
    start_server: StartServer, wavespeed_npm_sdk: Path
) -> None:
    """A 5004 answer is a ``WavespeedSyncTimeoutException``, excluded from the
    task-level retry (``dist/api/client.js:446-448``): one task."""
    server = start_server(profile="fast")  # a task that outlasts the instant profile
    scenario(server, sync_timeout=True)

    outcome = npm_run(wavespeed_npm_sdk, server, enableSyncMode=True)

    assert outcome.get("name") == "WavespeedSyncTimeoutException", outcome
    assert len(server.service.predictions()) == 1
