"""Record through the proxy, replay into another server: the official SDK sees the same.

Three servers: an upstream mock (standing in for the real API), a recording proxy
in front of it, and a replaying server that has only the cassette. The SDK runs
the same calls against the proxy and against the replay; statuses, output bytes
and errors must be the same. Marked ``sdk``: in CI a skip among them is a failure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import wavespeed
from PIL import Image
from wavespeed_mock.contracts import validate_response
from wavespeed_mock.mock_server.features.replay import Cassette
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings

pytestmark = pytest.mark.sdk

T2V = "character-ai/ovi/text-to-video"
I2V = "character-ai/ovi/image-to-video"
KEY = "sk-live-0123456789abcdef-record-key"
FAILING_KEY = "sk-live-fedcba9876543210-fails"
PROMPT = "A cinematic ocean wave at sunrise <S>Hello there.<E>"


@dataclass
class Seen:
    """What the SDK saw during one run."""

    statuses: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    error: str | None = None


def sdk(url: str, key: str, seen: Seen) -> wavespeed.Client:
    class Watching(wavespeed.Client):  # type: ignore[misc]
        def _get_result(self, request_id: str, timeout: float | None = None) -> Any:
            result = super()._get_result(request_id, timeout=timeout)
            seen.statuses.append(result["data"]["status"])
            return result

    return Watching(api_key=key, base_url=url, retry_interval=0.05, max_retries=0)


def run(url: str, key: str, model: str, body: dict[str, Any], png: Path) -> Seen:
    seen = Seen()
    client = sdk(url, key, seen)
    try:
        if body.get("image") == UPLOAD:
            # A fresh upload: its URL differs on every run, its content does not.
            body = {**body, "image": client.upload(str(png))}
        seen.outputs = client.run(model, body, poll_interval=0.02)["outputs"]
    except Exception as exc:  # the SDK raises RuntimeError and its subclasses
        seen.error = f"{type(exc).__name__}: {exc}"
    return seen


UPLOAD = "<upload the knight>"
CALLS: list[tuple[str, str, dict[str, Any]]] = [
    (KEY, T2V, {"prompt": PROMPT, "seed": 7, "size": "960*540"}),
    (
        KEY,
        I2V,
        {"image": "https://example.com/knight.png", "prompt": PROMPT, "seed": 3},
    ),
    (FAILING_KEY, T2V, {"prompt": "this one fails", "seed": 1}),
    (KEY, T2V, {"prompt": PROMPT, "seed": "not a number"}),  # HTTP 400
    (KEY, I2V, {"image": UPLOAD, "prompt": PROMPT, "seed": 4}),
]


def knight(tmp_path: Path) -> Path:
    path = tmp_path / "knight.png"
    if not path.exists():
        Image.new("RGB", (320, 180), (40, 90, 160)).save(path)
    return path


def start(settings: Settings) -> LiveServer:
    return LiveServer(settings.replace(port=0, check_responses=True)).start()


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[LiveServer]:
    live = start(Settings(data_dir=tmp_path / "upstream", profile="polls:3"))
    # The failing key's tasks end failed (moderation), as a real account's might.
    httpx.post(
        live.url + "/_mock/scenarios",
        json={"scope": "key", "api_key": FAILING_KEY, "fail_code": 1200},
    ).raise_for_status()
    yield live
    live.stop()
    assert live.service.contract_violations == []


@dataclass
class Recording:
    runs: list[Seen]
    downloads: list[str]
    """SHA-256 of each output, downloaded through the proxy."""
    webhook_secret: str


def record(upstream: LiveServer, cassette: Path, tmp_path: Path) -> Recording:
    proxy = start(
        Settings(data_dir=tmp_path / "proxy", record=cassette, upstream=upstream.url)
    )
    try:
        seen = [
            run(proxy.url, key, model, body, knight(tmp_path))
            for key, model, body in CALLS
        ]
        # A webhook secret through the proxy: it must not reach the cassette.
        secret = httpx.get(
            proxy.url + "/api/v3/webhook/secret",
            headers={"Authorization": f"Bearer {KEY}"},
        ).json()["data"]["secret"]
        assert secret.startswith("whsec_")
        downloads = download_all(proxy, seen)
    finally:
        proxy.stop()
    assert proxy.service.contract_violations == []
    return Recording(seen, downloads, secret)


def download_all(server: LiveServer, runs: list[Seen]) -> list[str]:
    """The SHA-256 of every output, each downloaded through ``server``."""
    urls = [url for seen in runs for url in seen.outputs]
    assert all(url.startswith(server.url + "/outputs/recorded/") for url in urls)
    return [fetch(url) for url in urls]


def fetch(url: str) -> str:
    answer = httpx.get(url)
    answer.raise_for_status()
    assert answer.content[4:8] == b"ftyp"  # an MP4
    return hashlib.sha256(answer.content).hexdigest()


def test_the_sdk_sees_the_same_run_replayed(
    upstream: LiveServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "cassette"
    recording = record(upstream, cassette, tmp_path)
    recorded_runs = recording.runs
    assert [s.statuses[-1] if s.statuses else None for s in recorded_runs] == [
        "completed",
        "completed",
        "failed",
        None,
        "completed",
    ]
    assert "HTTP 400" in (recorded_runs[3].error or "")
    assert "_TaskFailedError" in (recorded_runs[2].error or "")

    upstream.stop()  # the replay needs nothing but the cassette
    replay = start(
        Settings(
            data_dir=tmp_path / "replay",
            replay=cassette,
            replay_by="polls",
            replay_miss="error",
        )
    )
    try:
        replayed = [
            run(replay.url, key, model, body, knight(tmp_path))
            for key, model, body in CALLS
        ]
        downloads = download_all(replay, replayed)
    finally:
        replay.stop()
    assert [s.statuses for s in replayed] == [s.statuses for s in recorded_runs]
    assert [s.error for s in replayed] == [s.error for s in recorded_runs]
    assert downloads == recording.downloads
    assert len(downloads) == 3
    assert replay.service.contract_violations == []


def test_the_cassette_holds_no_key_secret_or_signature(
    upstream: LiveServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "cassette"
    secret = record(upstream, cassette, tmp_path).webhook_secret
    text = "\n".join(
        p.read_text(encoding="utf-8") for p in sorted(cassette.rglob("*.json"))
    )
    assert KEY not in text
    assert FAILING_KEY not in text
    assert secret not in text
    assert secret[len("whsec_") :] not in text
    assert "Bearer" not in text
    assert "whsec_<redacted>" in text  # the secret's answer was recorded, redacted
    loaded = Cassette.load(cassette)
    assert len(loaded.tasks) == len(CALLS)
    assert [t.statuses[-1] if t.statuses else None for t in loaded.tasks] == [
        "completed",
        "completed",
        "failed",
        None,
        "completed",
    ]
    # The upstream is a contract-true mock: its recording breaks nothing.
    assert list(loaded.all_violations()) == []


def test_a_replay_miss_names_the_closest_recording(
    upstream: LiveServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "cassette"
    record(upstream, cassette, tmp_path)
    replay = start(
        Settings(data_dir=tmp_path / "replay", replay=cassette, replay_miss="error")
    )
    try:
        answer = httpx.post(
            replay.url + "/api/v3/" + T2V,
            json={"prompt": PROMPT, "seed": 8, "size": "960*540"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    finally:
        replay.stop()
    assert answer.status_code == 404
    body = answer.json()
    validate_response("POST", "/api/v3/" + T2V, 404, body)
    assert body["error_code"] == "replay_miss"
    assert "tasks/0001-text-to-video.json" in body["message"]
    assert "$.seed (recorded 7, got 8)" in body["message"]


def test_any_catalogue_model_records_and_replays(
    upstream: LiveServer, tmp_path: Path
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("wavespeed-ai/z-image/turbo", {"prompt": "A lighthouse", "size": "512*512"}),
        ("elevenlabs/multilingual-v2", {"text": "Hello there.", "voice_id": "Alicia"}),
        ("wavespeed-ai/any-llm", {"prompt": "Name a lighthouse"}),
    ]
    cassette = tmp_path / "catalogue-cassette"

    def through(server: LiveServer) -> list[list[str]]:
        seen = [
            run(server.url, KEY, model, body, knight(tmp_path)) for model, body in calls
        ]
        assert [s.statuses[-1] for s in seen] == ["completed"] * len(calls), seen
        return [
            [
                hashlib.sha256(httpx.get(u).content).hexdigest()
                if u.startswith("http")
                else u
                for u in s.outputs
            ]
            for s in seen
        ]

    proxy = start(
        Settings(data_dir=tmp_path / "proxy", record=cassette, upstream=upstream.url)
    )
    try:
        recorded = through(proxy)
    finally:
        proxy.stop()
    assert proxy.service.contract_violations == []
    upstream.stop()
    replay = start(
        Settings(
            data_dir=tmp_path / "replay",
            replay=cassette,
            replay_by="polls",
            replay_miss="error",
        )
    )
    try:
        replayed = through(replay)
    finally:
        replay.stop()
    assert replayed == recorded
    assert recorded[2][0].startswith("[synthetic answer")  # the LLM's text, inline
