"""Every catalogue model through the server: generated bodies are accepted and
end with outputs of the declared kind, count, size and length."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from wavespeed_mock.contracts import OutputPlan, builtin_catalogue, get_model
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.plugins import request_bodies
from wavespeed_mock.plugins._media_probe import probe_clip

from .._support import checked_live_server, poll_until_ended

MODELS = builtin_catalogue().ids()
# What the server renders in this test: a file is fetched and probed when its
# plan is at most this large (a 1080p, 8 s clip takes seconds on a busy core).
MAX_VIDEO_PIXEL_FRAMES = 1280 * 720 * 130
MAX_IMAGE_PIXELS = 2048 * 2048


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("catalogue")
    # Lazy renders: a file is made when it is first fetched, so bodies asking
    # for 4K or 20 s cost nothing unless this test fetches them.
    with checked_live_server(data, synthetic=True, lazy_renders=True) as live:
        yield live


def _cheap(plan: OutputPlan) -> bool:
    if plan.kind == "video":
        pixels = (plan.width or 1280) * (plan.height or 720)
        return pixels * plan.frame_count <= MAX_VIDEO_PIXEL_FRAMES
    if plan.kind == "image":
        return (plan.width or 1024) * (
            plan.height or 1024
        ) * plan.count <= MAX_IMAGE_PIXELS
    return plan.kind in ("audio", "text")


def _check_file(plan: OutputPlan, url: str) -> None:
    answer = httpx.get(url, timeout=120)
    assert answer.status_code == 200, (url, answer.text[:200])
    assert answer.headers["content-type"].startswith(plan.media_type.split(";")[0])
    content = answer.content
    if plan.kind == "image":
        with Image.open(io.BytesIO(content)) as image:
            assert image.format == {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}.get(
                plan.format, image.format
            )
            if plan.width and plan.height:
                assert image.size == (plan.width, plan.height)
    elif plan.kind in ("video", "audio"):
        info = probe_clip(content)
        expected = (
            plan.frame_count / plan.fps if plan.kind == "video" else plan.duration_s
        )
        assert info.duration_s is not None and expected is not None
        assert abs(info.duration_s - expected) <= max(0.15, 0.03 * expected), (
            info,
            plan,
        )
        if plan.kind == "video":
            assert info.has_audio == plan.audio, (info, plan)
            if plan.width and plan.height:
                assert (info.width, info.height) == (plan.width, plan.height)
        else:
            assert info.video_codec is None and info.has_audio


@pytest.mark.parametrize("model", MODELS)
def test_generated_bodies_run_and_end_with_the_declared_outputs(
    server: LiveServer, model: str
) -> None:
    spec = get_model(model)
    client = httpx.Client(
        base_url=server.url, headers={"Authorization": "Bearer catalogue"}, timeout=120
    )
    fetched: list[bool] = []

    @settings(
        max_examples=4,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(request_bodies(model), st.data())
    def run(body: dict[str, Any], data: st.DataObject) -> None:
        body.pop("enable_base64_output", None)  # tested with Ovi, where it is cheap
        answer = client.post(f"/api/v3/{model}", json=body)
        assert answer.status_code == 200, answer.text
        done = poll_until_ended(client, answer.json()["data"]["id"])
        assert done["status"] == "completed", done
        plan = spec.outputs_for(body)
        outputs = done["outputs"]
        if plan.inline:
            assert len(outputs) == 1 and not outputs[0].startswith("http")
            return
        assert len(outputs) == plan.count
        assert all(o.endswith(plan.suffix) for o in outputs)
        if _cheap(plan) and len(fetched) < 2:
            fetched.append(True)
            _check_file(plan, outputs[-1])

    with client:
        run()


def _my_catalogue(folder: Path) -> Path:
    entry = get_model("wavespeed-ai/z-image/turbo").served()
    entry.update(
        model_id="acme/sketch/text-to-image", name="Acme Sketch", base_price=0.5
    )
    run = entry["api_schema"]["api_schemas"][0]
    run["api_path"] = "/api/v3/acme/sketch/text-to-image"
    path = folder / "acme.json"
    path.write_text(json.dumps({"code": 200, "message": "success", "data": [entry]}))
    return path


def test_a_user_catalogue_and_any_model_through_the_server(tmp_path: Path) -> None:
    catalogue = _my_catalogue(tmp_path)
    with (
        checked_live_server(tmp_path / "data", catalogue=(str(catalogue),)) as live,
        httpx.Client(
            base_url=live.url, headers={"Authorization": "Bearer k"}
        ) as client,
    ):
        before = client.get("/api/v3/balance").json()["data"]["balance"]
        listed = [m["model_id"] for m in client.get("/api/v3/models").json()["data"]]
        assert listed[-1] == "acme/sketch/text-to-image"
        answer = client.post(
            "/api/v3/acme/sketch/text-to-image", json={"prompt": "a cat"}
        )
        assert answer.status_code == 200, answer.text
        done = poll_until_ended(client, answer.json()["data"]["id"])
        assert done["outputs"][0].endswith(".jpg")
        price = client.post(
            "/api/v3/model/price", json={"model_id": "acme/sketch/text-to-image"}
        )
        assert price.json()["data"]["price"] == 0.5
        # Charged at the model's price, and billed under it.
        after = client.get("/api/v3/balance").json()["data"]["balance"]
        assert round(before - after, 6) == 0.5
        bills = client.post(
            "/api/v3/billings/search", json={"page": 1, "page_size": 10}
        )
        assert [i["price"] for i in bills.json()["data"]["items"]] == [0.5]
        unknown = client.post("/api/v3/acme/sketch/text-to-imag", json={"prompt": "x"})
        assert unknown.status_code == 404
        assert "Did you mean 'acme/sketch/text-to-image'" in unknown.json()["message"]
        assert "--any-model" in unknown.json()["message"]
        # The API's own resources are never taken for models.
        assert client.post("/api/v3/balance", json={}).status_code == 405
    with (
        checked_live_server(tmp_path / "any", any_model=True) as live,
        httpx.Client(
            base_url=live.url, headers={"Authorization": "Bearer k"}
        ) as client,
    ):
        answer = client.post(
            "/api/v3/acme/new/text-to-speech", json={"prompt": "hello"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-wavespeed-mock-any-model"] == "audio"
        done = poll_until_ended(client, answer.json()["data"]["id"])
        assert done["outputs"][0].endswith(".mp3")
        journal = client.get("/_mock/journal").json()["data"]["items"]
        assert [e.get("any_model") for e in journal if e["method"] == "POST"] == [
            "audio"
        ]


def test_created_at_varies_its_digits_by_default_and_a_strict_parser_trips(
    tmp_path: Path,
) -> None:
    from datetime import datetime

    with (
        checked_live_server(tmp_path, timestamp_digits="varied") as live,
        httpx.Client(
            base_url=live.url, headers={"Authorization": "Bearer k"}
        ) as client,
    ):
        stamps = [
            client.post(
                "/api/v3/wavespeed-ai/z-image/turbo", json={"prompt": "x"}
            ).json()["data"]["created_at"]
            for _ in range(24)
        ]
    # Several styles, as real bodies carry (Go's RFC3339Nano): 0, 2, 3 or 9 digits.
    assert len({len(s) for s in stamps}) >= 2
    failures = 0
    for stamp in stamps:  # a client that assumes one style, as some do
        try:
            datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
        except ValueError:
            failures += 1
    assert failures > 0
