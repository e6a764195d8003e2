"""Record and replay, piece by piece: the cassette, redaction, the player, the proxy."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from wavespeed_mock.mock_server.cli.main import main
from wavespeed_mock.mock_server.core.clock import ServerClock
from wavespeed_mock.mock_server.errors import ApiError
from wavespeed_mock.mock_server.features.replay import (
    Cassette,
    CassetteError,
    CassettePlayer,
    CassetteRecorder,
    Exchange,
    RecordedTask,
    Redactor,
)
from wavespeed_mock.mock_server.features.replay.proxy import (
    ProxiedRequest,
    RecordingProxy,
)
from wavespeed_mock.mock_server.features.replay.upstream import (
    DownloadError,
    Upstream,
)
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings, SettingsError
from wavespeed_mock.plugins import check_cassette

T2V = "character-ai/ovi/text-to-video"
T2V_PATH = "/api/v3/" + T2V
BASE = "http://127.0.0.1:9"


def prediction(task_id: str, status: str, outputs: list[str] | None = None) -> Any:
    return {
        "code": 200,
        "message": "success",
        "data": {
            "id": task_id,
            "model": T2V,
            "outputs": outputs or [],
            "urls": {"get": f"https://up.test/api/v3/predictions/{task_id}/result"},
            "has_nsfw_contents": [],
            "status": status,
            "created_at": "2026-01-01T00:00:00.000Z",
            "error": "",
            "executionTime": 0,
            "timings": {"inference": 0},
        },
    }


def recorded(tmp_path: Path, body: dict[str, Any], *times_statuses: Any) -> Cassette:
    cassette = Cassette(tmp_path / "c")
    cassette.save_index()
    submit = Exchange("POST", T2V_PATH, 200, prediction("t1", "created"), body)
    polls = [
        Exchange("GET", "/api/v3/predictions/t1/result", 200, prediction("t1", s), t=t)
        for t, s in times_statuses
    ]
    task = RecordedTask("0001-text-to-video.json", T2V, submit, polls, task_id="t1")
    cassette.tasks.append(task)
    cassette.save_task(task)
    return Cassette.load(cassette.root)


SEQUENCE = ((0.5, "created"), (1.0, "processing"), (2.0, "completed"))


# -- the player ------------------------------------------------------------------


def statuses(player: CassettePlayer, task_id: str) -> str:
    return str(player.poll(task_id, base_url=BASE).body["data"]["status"])


@pytest.mark.parametrize("speed", [1.0, 10.0])
def test_by_time_walks_the_recorded_offsets_divided_by_speed(
    tmp_path: Path, speed: float
) -> None:
    clock = ServerClock(virtual=True, start=1000.0)
    player = CassettePlayer(
        recorded(tmp_path, {"prompt": "p"}, *SEQUENCE), clock=clock, speed=speed
    )
    answer = player.submit(T2V, {"prompt": "p"}, base_url=BASE)
    assert answer is not None and answer.body["data"]["id"] == "t1"
    seen = [statuses(player, "t1")]  # before the first recorded poll: the first
    for at in (0.9, 1.5, 2.5, 100.0):
        clock.set(1000.0 + at / speed)
        seen.append(statuses(player, "t1"))
    assert seen == ["created", "created", "processing", "completed", "completed"]


def test_by_polls_answers_the_nth_poll_with_the_nth_recording(tmp_path: Path) -> None:
    player = CassettePlayer(
        recorded(tmp_path, {"prompt": "p"}, *SEQUENCE),
        clock=ServerClock(virtual=True),
        by="polls",
    )
    player.submit(T2V, {"prompt": "p"}, base_url=BASE)
    assert [statuses(player, "t1") for _ in range(5)] == [
        "created",
        "processing",
        "completed",
        "completed",
        "completed",
    ]


def test_answers_point_at_the_mock(tmp_path: Path) -> None:
    player = CassettePlayer(
        recorded(tmp_path, {"prompt": "p"}, *SEQUENCE), clock=ServerClock()
    )
    answer = player.submit(T2V, {"prompt": "p"}, base_url=BASE)
    assert answer is not None
    assert answer.body["data"]["urls"]["get"] == f"{BASE}/api/v3/predictions/t1/result"


def test_matching_ignores_the_named_fields_only(tmp_path: Path) -> None:
    cassette = recorded(tmp_path, {"prompt": "p", "seed": 1}, *SEQUENCE)
    strict = CassettePlayer(cassette, clock=ServerClock())
    assert strict.submit(T2V, {"prompt": "p", "seed": 2}, base_url=BASE) is None
    lenient = CassettePlayer(cassette, clock=ServerClock(), ignore=("seed",))
    assert lenient.submit(T2V, {"prompt": "p", "seed": 2}, base_url=BASE) is not None
    assert lenient.submit(T2V, {"prompt": "q", "seed": 1}, base_url=BASE) is None


def test_a_recording_replayed_twice_at_once_gets_a_fresh_id(tmp_path: Path) -> None:
    player = CassettePlayer(
        recorded(tmp_path, {"prompt": "p"}, *SEQUENCE), clock=ServerClock()
    )
    first = player.submit(T2V, {"prompt": "p"}, base_url=BASE)
    second = player.submit(T2V, {"prompt": "p"}, base_url=BASE)
    assert first is not None and second is not None
    ids = {first.body["data"]["id"], second.body["data"]["id"]}
    assert len(ids) == 2 and "t1" in ids
    player.reset()
    again = player.submit(T2V, {"prompt": "p"}, base_url=BASE)
    assert again is not None and again.body["data"]["id"] == "t1"


def test_a_miss_names_the_closest_recording_and_the_differences(
    tmp_path: Path,
) -> None:
    player = CassettePlayer(
        recorded(tmp_path, {"prompt": "p", "seed": 1}, *SEQUENCE), clock=ServerClock()
    )
    error = player.miss(T2V, {"prompt": "p", "seed": 2, "size": "1"}, path=T2V_PATH)
    assert error.status == 404 and error.error_code == "replay_miss"
    assert "tasks/0001-text-to-video.json" in error.message
    assert "$.seed (recorded 1, got 2)" in error.message
    assert "$.size (not recorded, got '1')" in error.message
    other = player.miss("character-ai/ovi/image-to-video", {}, path="/x")
    assert f"it holds: {T2V}" in other.message


# -- the cassette --------------------------------------------------------------------


def test_a_cassette_reads_back_what_was_written(tmp_path: Path) -> None:
    cassette = recorded(tmp_path, {"prompt": "p"}, *SEQUENCE)
    assert [t.statuses for t in cassette.tasks] == [
        ["created", "processing", "completed"]
    ]
    text = (cassette.tasks_dir / "0001-text-to-video.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_a_newer_format_version_is_refused_with_a_hint(tmp_path: Path) -> None:
    cassette = recorded(tmp_path, {"prompt": "p"}, *SEQUENCE)
    index = cassette.root / "cassette.json"
    index.write_text(json.dumps({**json.loads(index.read_text()), "version": 99}))
    with pytest.raises(CassetteError, match=r"version 99.*Upgrade wavespeed-mock"):
        Cassette.load(cassette.root)
    with pytest.raises(CassetteError, match=r"cassette\.json is missing"):
        Cassette.load(tmp_path / "nowhere")


# -- redaction ------------------------------------------------------------------------


def test_redaction_scrubs_keys_secrets_signatures_and_signed_urls() -> None:
    redactor = Redactor()
    redactor.learn("sk-abcdef123456")
    scrubbed = redactor.scrub(
        {
            "message": "key sk-abcdef123456 is invalid",
            "nested": [{"secret": "whsec_QUJDREVGRw=="}],
            "header": "v3,0123456789abcdef0123456789abcdef0123456789abcdef",
            "url": "https://cdn.test/a.mp4?Expires=1&Signature=abc&Key-Pair-Id=k",
            "plain": "https://cdn.test/a.mp4?size=2",
        }
    )
    text = json.dumps(scrubbed)
    for secret in ("sk-abcdef123456", "QUJDREVGRw", "0123456789abcdef", "abc&"):
        assert secret not in text
    assert scrubbed["url"] == "https://cdn.test/a.mp4?<redacted>"
    assert scrubbed["plain"] == "https://cdn.test/a.mp4?size=2"


# -- the proxy, against a fake upstream ---------------------------------------------------


def fake_upstream(answers: dict[str, httpx.Response]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        return answers.get(request.url.path) or httpx.Response(
            404, json={"code": 404, "message": "not found"}
        )

    return httpx.MockTransport(handle)


def proxy_for(
    tmp_path: Path,
    answers: dict[str, httpx.Response],
    *,
    max_submits: int | None = None,
    max_output_bytes: int = 1024,
) -> RecordingProxy:
    from wavespeed_mock.contracts import builtin_catalogue

    upstream = Upstream(
        "http://up.test",
        transport=fake_upstream(answers),
        max_output_bytes=max_output_bytes,
    )
    recorder = CassetteRecorder(
        Cassette(tmp_path / "c"), clock=ServerClock(), max_submits=max_submits
    )
    return RecordingProxy(upstream, recorder, builtin_catalogue().for_path)


def submit(proxy: RecordingProxy, body: dict[str, Any]) -> Any:
    request = ProxiedRequest(
        "POST",
        T2V_PATH,
        "",
        {"authorization": "Bearer sk-client-key", "content-type": "application/json"},
        json.dumps(body).encode(),
    )
    return asyncio.run(proxy.handle(request, base_url=BASE))


def test_the_spend_cap_refuses_submits_past_it_and_forwards_nothing(
    tmp_path: Path,
) -> None:
    sent: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(200, json=prediction("t1", "created"))

    proxy = proxy_for(tmp_path, {}, max_submits=1)
    proxy.upstream._client._transport = httpx.MockTransport(handle)
    assert submit(proxy, {"prompt": "p"}).status == 200
    with pytest.raises(ApiError) as refused:
        submit(proxy, {"prompt": "p"})
    assert refused.value.status == 403
    assert refused.value.error_code == "record_max_submits"
    assert sent == [T2V_PATH]
    assert len(Cassette.load(tmp_path / "c").tasks) == 1


def test_the_spend_cap_counts_submits_to_models_the_contract_does_not_know(
    tmp_path: Path,
) -> None:
    # Issue 21: with --record-max-submits 0, Ovi got 403 but three seedream
    # submits were forwarded upstream, each billed there.
    sent: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(200, json=prediction(f"t{len(sent)}", "created"))

    proxy = proxy_for(tmp_path, {}, max_submits=1)
    proxy.upstream._client._transport = httpx.MockTransport(handle)
    other = "/api/v3/bytedance/seedream-v5.0-pro"
    request = ProxiedRequest(
        "POST", other, "", {"content-type": "application/json"}, b'{"prompt": "p"}'
    )
    assert asyncio.run(proxy.handle(request, base_url=BASE)).status == 200
    for path in (other, T2V_PATH):
        with pytest.raises(ApiError) as refused:
            asyncio.run(proxy.handle(replace(request, path=path), base_url=BASE))
        assert refused.value.status == 403
    assert sent == [other]
    # The API's own POSTs are not submits: an upload is forwarded past the cap.
    upload = replace(request, path="/api/v3/media/upload/binary")
    asyncio.run(proxy.handle(upload, base_url=BASE))
    assert sent == [other, "/api/v3/media/upload/binary"]
    (task,) = Cassette.load(tmp_path / "c").tasks  # recorded as a task, not an exchange
    assert task.model == "bytedance/seedream-v5.0-pro" and task.task_id == "t1"


def test_a_recording_lists_where_upstream_breaks_the_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = prediction("t1", "created")
    del wrong["data"]["status"]  # the contract requires it
    proxy = proxy_for(tmp_path, {T2V_PATH: httpx.Response(200, json=wrong)})
    # The upstream accepts a seed the contract says must be an integer.
    assert submit(proxy, {"prompt": "p", "seed": "7"}).status == 200
    task = Cassette.load(tmp_path / "c").tasks[0]
    where = {(v["where"], v["path"]) for v in task.contract_violations}
    assert where == {("submit.response", "$.data.status"), ("submit.request", "$.seed")}
    report = check_cassette(tmp_path / "c")
    assert not report.ok
    assert main(["check", "--cassette", str(tmp_path / "c")]) == 1
    assert "submit.response $.data.status" in capsys.readouterr().out


def test_an_output_over_the_limit_is_not_stored_and_keeps_its_url(
    tmp_path: Path,
) -> None:
    done = prediction("t1", "completed", ["http://up.test/big.mp4?token=s3cr3t"])
    proxy = proxy_for(
        tmp_path,
        {
            T2V_PATH: httpx.Response(200, json=done),
            "/big.mp4": httpx.Response(200, content=b"\0" * 2048),
        },
    )
    answer = submit(proxy, {"prompt": "p"})
    assert json.loads(answer.content)["data"]["outputs"] == [
        "http://up.test/big.mp4?token=s3cr3t"
    ]
    (file,) = Cassette.load(tmp_path / "c").tasks[0].submit.files
    assert file.name is None and "over the 1,024-byte limit" in (file.error or "")
    assert (
        "s3cr3t"
        not in (tmp_path / "c" / "tasks" / "0001-text-to-video.json").read_text()
    )


def test_outputs_are_never_fetched_from_an_internal_address(tmp_path: Path) -> None:
    upstream = Upstream("http://up.test", transport=fake_upstream({}))
    for url in (
        "http://10.0.0.1/a.mp4",
        "http://127.0.0.1:1/a.mp4",
        "file:///etc/passwd",
    ):
        with pytest.raises(DownloadError):
            asyncio.run(upstream.download(url))


# -- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"record": Path("c")}, "--record needs --upstream"),
        ({"upstream": "http://x"}, "--upstream needs --record"),
        ({"replay": Path("a"), "record": Path("b")}, "name different cassettes"),
        ({"record": Path("c"), "upstream": "ftp://x"}, "not an http"),
        (
            {"record": Path("c"), "upstream": "http://x", "replay_miss": "x"},
            "--replay-miss",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    changes = {
        k: tmp_path / v if isinstance(v, Path) else v for k, v in changes.items()
    }
    with pytest.raises(SettingsError, match=message):
        LiveServer(Settings(data_dir=tmp_path / "d", port=0, **changes))


def test_a_replay_under_a_virtual_clock_moves_with_it(tmp_path: Path) -> None:
    cassette = recorded(tmp_path, {"prompt": "p"}, *SEQUENCE)
    settings = Settings(
        data_dir=tmp_path / "d",
        port=0,
        replay=cassette.root,
        replay_speed=2.0,
        virtual_clock=True,
    )
    with LiveServer(settings) as live:
        key = {"Authorization": "Bearer k"}
        task = httpx.post(live.url + T2V_PATH, json={"prompt": "p"}, headers=key)
        url = task.json()["data"]["urls"]["get"]
        first = httpx.get(url, headers=key).json()["data"]["status"]
        live.service.clock.advance(0.6)  # 1.2 s of the recording
        second = httpx.get(url, headers=key).json()["data"]["status"]
        live.service.clock.advance(10)
        third = httpx.get(url, headers=key).json()["data"]["status"]
        # A miss falls back to the synthetic engine by default.
        synthetic = httpx.post(live.url + T2V_PATH, json={"prompt": "q"}, headers=key)
    assert [first, second, third] == ["created", "processing", "completed"]
    assert synthetic.status_code == 200
    assert synthetic.json()["data"]["id"] != "t1"
