"""Scenarios: failures, limits, faults and latency, chosen without changing the client."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import wavespeed
from wavespeed_mock.mock_server.http.live import LiveServer

from ..._fakes import fake_engine
from ..._support import (
    T2V,
    CallRecorder,
    checked_live_server,
    in_thread,
    poll_until_ended,
    wait_until,
)
from ...conftest import AUTH, StartServer

T2V_MODEL = "character-ai/ovi/text-to-video"


def scenario(server: LiveServer, **body: Any) -> dict[str, Any]:
    response = httpx.post(server.url + "/_mock/scenarios", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def submit(server: LiveServer, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        server.url + T2V,
        json={"prompt": "waves", "seed": 1},
        headers=headers or AUTH,
        timeout=30,
    )


def result(
    server: LiveServer, pid: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = httpx.get(
        f"{server.url}/api/v3/predictions/{pid}/result",
        headers=headers or AUTH,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def clock(server: LiveServer, **body: float) -> dict[str, Any]:
    response = httpx.post(server.url + "/_mock/clock", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]["clock"]
    return data


def wait_for_renders(server: LiveServer, ids: list[str]) -> None:
    """The fake engine renders in real time, whatever the virtual clock says."""
    wait_until(
        lambda: all(server.service.get(i).outcome_known for i in ids),
        what=f"renders of {ids} finished",
    )


@pytest.mark.parametrize("code", [1200, 1402, 1403, 1405, 5000, 5003, 5004])
def test_a_task_fails_with_any_task_error_code(
    start_server: StartServer, code: int
) -> None:
    server = start_server()
    scenario(server, fail_code=code)
    data = result(server, submit(server).json()["data"]["id"])
    assert data["status"] == "failed" and data["code"] == code and data["error"]
    assert fake_engine(server).jobs == []  # nothing rendered


@pytest.mark.parametrize("status", ["cancelled", "timeout"])
def test_terminal_statuses_the_docs_do_not_list(
    start_server: StartServer, status: str
) -> None:
    server = start_server()
    scenario(server, status=status)
    assert result(server, submit(server).json()["data"]["id"])["status"] == status


@pytest.mark.sdk
def test_sdk_run_raises_on_a_failed_task_and_run_no_throw_reports_it(
    start_server: StartServer,
) -> None:
    server = start_server()
    scenario(server, fail_code=1200)
    client = wavespeed.Client(api_key="k", base_url=server.url)
    with pytest.raises(RuntimeError, match="Prediction failed"):
        client.run(T2V_MODEL, {"prompt": "p"}, poll_interval=0.05)
    outcome = client.run_no_throw(T2V_MODEL, {"prompt": "p"}, poll_interval=0.05)
    assert outcome["outputs"] is None
    assert "sensitive" in str(outcome)


@pytest.mark.sdk
def test_sdk_run_retries_through_5xx_polls(start_server: StartServer) -> None:
    # The draws follow the seed and the order of polls (the same on every run);
    # seed 7 at a 50% share gives both kinds of answer well before 40 clean polls.
    server = start_server(profile="polls:40")
    scenario(server, poll_error_rate=0.5, seed=7)
    client = wavespeed.Client(
        api_key="k", base_url=server.url, retry_interval=0.01, max_connection_retries=50
    )
    output = client.run(T2V_MODEL, {"prompt": "p"}, poll_interval=0.01)
    assert output["outputs"][0].endswith(".mp4")
    statuses = [
        e["status"]
        for e in server.mock.journal.entries()
        if e["path"].endswith("/result")
    ]
    assert {500, 502, 503} & set(statuses) and statuses[-1] == 200


def test_nsfw_flag(start_server: StartServer) -> None:
    server = start_server()
    scenario(server, nsfw=True)
    pid = submit(server).json()["data"]["id"]
    wait_for_renders(server, [pid])
    data = result(server, pid)
    assert data["status"] == "completed" and data["has_nsfw_contents"] == [True]


def test_per_minute_limit_answers_429_with_retry_after(
    start_server: StartServer,
) -> None:
    server = start_server(virtual_clock=True)
    scenario(server, per_minute=2)
    assert [submit(server).status_code for _ in range(2)] == [200, 200]
    refused = submit(server)
    assert refused.status_code == 429 and refused.json()["code"] == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    clock(server, advance=61)
    assert submit(server).status_code == 200


def test_bad_bodies_do_not_use_up_the_rate_limit(start_server: StartServer) -> None:
    server = start_server()
    scenario(server, per_minute=1)
    assert (
        httpx.post(server.url + T2V, json={"prompt": ""}, headers=AUTH).status_code
        == 400
    )
    assert submit(server).status_code == 200


def test_submits_refused_after_the_plan_give_their_slot_back(
    start_server: StartServer,
) -> None:
    # These pass the contract but are refused later in the pipeline: a bad
    # webhook URL (an admission) and a data: image that is no image (intake).
    server = start_server(virtual_clock=True)
    scenario(server, per_minute=1)
    I2V = "/api/v3/character-ai/ovi/image-to-video"
    not_an_image = {"prompt": "p", "image": "data:image/png;base64,aGVsbG8="}
    refused = [
        httpx.post(
            server.url + T2V,
            json={"prompt": "p"},
            params={"webhook": "ftp://example.com/hook"},
            headers=AUTH,
        ),
        httpx.post(server.url + I2V, json=not_an_image, headers=AUTH),
    ]
    assert [r.status_code for r in refused] == [400, 400]
    assert submit(server).status_code == 200  # the one slot was still free
    assert submit(server).status_code == 429


def test_concurrency_cap_queues_extra_tasks_in_created(
    start_server: StartServer,
) -> None:
    server = start_server(profile="fast", virtual_clock=True)
    scenario(server, concurrency=2)
    ids = [submit(server).json()["data"]["id"] for _ in range(3)]
    clock(server, advance=1.0)
    assert [result(server, i)["status"] for i in ids] == [
        "processing",
        "processing",
        "created",
    ]
    clock(server, advance=1.5)
    wait_for_renders(server, ids[:2])
    assert [result(server, i)["status"] for i in ids] == [
        "completed",
        "completed",
        "processing",
    ]


def test_slow_queue(start_server: StartServer) -> None:
    server = start_server(profile="fast", virtual_clock=True)
    scenario(server, queue_s=30)
    pid = submit(server).json()["data"]["id"]
    clock(server, advance=20)
    assert result(server, pid)["status"] == "created"
    clock(server, advance=13)
    wait_for_renders(server, [pid])
    assert result(server, pid)["status"] == "completed"


def test_sync_timeout_scenario(start_server: StartServer) -> None:
    server = start_server(profile="fast")
    scenario(server, sync_timeout=True)
    data = httpx.post(
        server.url + T2V, json={"prompt": "p", "enable_sync_mode": True}, headers=AUTH
    ).json()["data"]
    assert data["status"] == "processing" and data["code"] == 5004


@pytest.mark.sdk
def test_sdk_sync_mode_timeout(start_server: StartServer) -> None:
    server = start_server(profile="fast")
    scenario(server, sync_timeout=True)
    client = wavespeed.Client(api_key="k", base_url=server.url)
    with pytest.raises(RuntimeError, match="Sync mode timed out"):
        client.run(T2V_MODEL, {"prompt": "p"}, enable_sync_mode=True)


def test_fixed_latency_waits_on_the_servers_clock(start_server: StartServer) -> None:
    server = start_server(virtual_clock=True)
    scenario(server, latency={"kind": "fixed", "ms": 300})
    sleeps = CallRecorder(server.service.clock, "sleep_until")
    answer = in_thread(lambda: submit(server))
    [(deadline,)] = sleeps.wait()  # the server holds the submit on its clock
    now = clock(server)["now"]
    assert deadline - now == pytest.approx(0.3)
    assert not answer.done() and len(server.service.store) == 0
    clock(server, advance=0.2)  # short of the latency: still held
    assert not answer.done() and len(server.service.store) == 0
    clock(server, set=deadline)
    assert answer.result(timeout=30).status_code == 200
    assert len(server.service.store) == 1


def test_scenario_per_key_next_n_and_named(start_server: StartServer) -> None:
    server = start_server()
    scenario(server, scope="key", api_key="unlucky", fail_code=1403)
    scenario(server, scope="next", count=1, status="timeout")
    scenario(server, scope="named", name="moderated", fail_code=1200)
    first = submit(server).json()["data"]["id"]  # next-N wins over nothing
    second = submit(server).json()["data"]["id"]
    unlucky = submit(server, {"Authorization": "Bearer unlucky"}).json()["data"]["id"]
    named = submit(server, {**AUTH, "X-Wavespeed-Mock-Scenario": "moderated"}).json()[
        "data"
    ]["id"]
    assert result(server, first)["status"] == "timeout"
    wait_for_renders(server, [second])  # a poll never waits for the clip
    assert result(server, second)["status"] == "completed"
    assert result(server, unlucky, {"Authorization": "Bearer unlucky"})["code"] == 1403
    assert result(server, named)["code"] == 1200
    unknown = submit(server, {**AUTH, "X-Wavespeed-Mock-Scenario": "nope"})
    assert unknown.status_code == 400


def test_faults_expire_after_a_count_or_a_time(start_server: StartServer) -> None:
    server = start_server(virtual_clock=True)
    scenario(server, fail_code=5003, expires_after_count=2)
    ids = [submit(server).json()["data"]["id"] for _ in range(3)]
    wait_for_renders(server, ids)
    statuses = [result(server, pid)["status"] for pid in ids]
    assert statuses == ["failed", "failed", "completed"]
    scenario(server, fail_code=5003, expires_after_s=10)
    assert result(server, submit(server).json()["data"]["id"])["status"] == "failed"
    clock(server, advance=11)
    pid = submit(server).json()["data"]["id"]
    wait_for_renders(server, [pid])  # its clip is rendered in real time
    assert result(server, pid)["status"] == "completed"


def test_scenarios_can_be_listed_and_cleared(start_server: StartServer) -> None:
    server = start_server()
    scenario(server, fail_code=1402)
    assert (
        httpx.get(server.url + "/_mock/scenarios").json()["data"]["scenarios"][
            "global"
        ]["fail_code"]
        == 1402
    )
    httpx.delete(server.url + "/_mock/scenarios")
    pid = submit(server).json()["data"]["id"]
    wait_for_renders(server, [pid])  # a poll never waits for the clip
    assert result(server, pid)["status"] == "completed"


@pytest.mark.parametrize(
    "body",
    [
        {"fail_code": -1},
        {"fail_code": 99},  # not a code the API sends
        {"status": "exploded"},
        {"poll_error_rate": 2},
        {"latency": {"kind": "weird"}},
        {"scope": "key"},
        {"scope": "next"},
        {"unknown_knob": 1},
        {"per_minute": 0},
    ],
)
def test_bad_scenarios_are_400(start_server: StartServer, body: dict[str, Any]) -> None:
    server = start_server()
    response = httpx.post(server.url + "/_mock/scenarios", json=body)
    assert response.status_code == 400 and response.json()["code"] == 400


def test_journal_and_ledger(start_server: StartServer) -> None:
    server = start_server()
    submit(server)
    journal = httpx.get(server.url + "/_mock/journal").json()["data"]["items"]
    assert journal[-1]["path"] == T2V and journal[-1]["status"] == 200
    ledger = httpx.get(server.url + "/_mock/ledger").json()["data"]["items"]
    assert (
        ledger
        == [
            {
                "api_key": "t…y",  # masked: keys are never shown in full
                "key_id": hashlib.sha256(b"test-key").hexdigest()[:32],
                "spent": 0.15,
                "balance": pytest.approx(ledger[0]["balance"]),
            }
        ]
    )


def test_the_contracts_scenario_schema_names_what_the_code_knows() -> None:
    from wavespeed_mock.contracts import load_schema
    from wavespeed_mock.mock_server.core.prediction import TIMESTAMP_DIGITS
    from wavespeed_mock.mock_server.features.scenarios.scenario import (
        _LOST_ANSWERS,
        ROUTES,
        SCHEMA,
        Scenario,
    )

    fields = load_schema(SCHEMA)["properties"]
    assert fields["routes"]["items"]["enum"] == ["*", *ROUTES]
    assert fields["timestamp_digits"]["enum"] == [*TIMESTAMP_DIGITS, "drawn", None]
    assert fields["lost_answer"]["enum"] == [*_LOST_ANSWERS, None]
    settable = set(fields) - {"scope", "api_key", "count"}
    assert settable == set(Scenario().as_json()) - {"uses"}


def test_a_scenario_may_target_one_model(tmp_path: Path) -> None:
    """A scenario with ``model`` fails that model's tasks only; the others of a
    pipeline go on."""
    with (
        checked_live_server(tmp_path) as live,
        httpx.Client(
            base_url=live.url, headers={"Authorization": "Bearer k"}
        ) as client,
    ):
        set_ = client.post(
            "/_mock/scenarios",
            json={"model": "wavespeed-ai/video-upscaler", "fail_code": 1405},
        )
        assert set_.status_code == 200, set_.text
        upscale = client.post(
            "/api/v3/wavespeed-ai/video-upscaler", json={"video": "https://e.com/a.mp4"}
        )
        image = client.post("/api/v3/wavespeed-ai/z-image/turbo", json={"prompt": "x"})
        assert (
            poll_until_ended(client, upscale.json()["data"]["id"])["status"] == "failed"
        )
        assert (
            poll_until_ended(client, image.json()["data"]["id"])["status"]
            == "completed"
        )
