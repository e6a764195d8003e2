"""The official SDK, unmodified, against a live mock with the synthetic engine.

These tests are marked ``sdk``: in CI a skip among them is a failure.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import wavespeed
from PIL import Image
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings

from .._video import probe
from ._support import wait_until

pytestmark = pytest.mark.sdk

I2V = "character-ai/ovi/image-to-video"
T2V = "character-ai/ovi/text-to-video"
PROMPT = "A knight in the rain. <S>I will defend this land.<E> <AUDCAP>Thunder rolls.<ENDAUDCAP>"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sdk-data")


def start(data_dir: Path, **options: object) -> LiveServer:
    values: dict[str, object] = {
        "port": 0,
        "profile": "fast",
        "check_responses": True,
        **options,
    }
    settings = Settings(data_dir=data_dir, **values)  # type: ignore[arg-type]
    return LiveServer(settings).start()


@pytest.fixture(scope="module")
def server(data_dir: Path) -> object:
    live = start(data_dir, profile="polls:2")
    yield live
    live.stop()
    assert live.service.contract_violations == []


def client_for(server: LiveServer) -> wavespeed.Client:
    return wavespeed.Client(
        api_key="test-key", base_url=server.url, retry_interval=0.05
    )


def upload_png(server: LiveServer, tmp_path: Path) -> str:
    path = tmp_path / "knight.png"
    Image.new("RGB", (320, 180), (40, 90, 160)).save(path)
    url: str = client_for(server).upload(str(path))
    return url


def test_run_image_to_video_returns_a_playable_clip(
    server: LiveServer, tmp_path: Path
) -> None:
    image = upload_png(server, tmp_path)
    output = client_for(server).run(
        I2V, {"image": image, "prompt": PROMPT, "seed": 42}, poll_interval=0.05
    )
    url = output["outputs"][0]
    assert url.startswith(server.url + "/outputs/")
    clip = httpx.get(url).content
    info = probe(clip, tmp_path)
    assert "Duration: 00:00:05.0" in info, info
    assert "24 fps" in info and "Audio: aac" in info and "Video: h264" in info
    assert "960x544" in info  # 16:9 image -> Ovi's 720x720-area size


def test_run_text_to_video_returns_a_playable_clip(
    server: LiveServer, tmp_path: Path
) -> None:
    output = client_for(server).run(
        T2V, {"prompt": PROMPT, "size": "540*960", "seed": 3}, poll_interval=0.05
    )
    info = probe(httpx.get(output["outputs"][0]).content, tmp_path)
    assert "540x960" in info and "Audio: aac" in info and "Duration: 00:00:05.0" in info


def test_run_no_throw_reports_a_failed_task(server: LiveServer) -> None:
    broken = (
        "data:image/png;base64," + "iVBORw0KGgo="
    )  # a PNG signature and nothing else
    result = client_for(server).run_no_throw(
        I2V, {"image": broken, "prompt": PROMPT}, poll_interval=0.05
    )
    assert result["outputs"] is None or result["outputs"] == []
    assert (
        result["detail"]["status"] == "failed"
        if "detail" in result
        else result["status"] == "failed"
    )


def test_sync_mode_through_the_sdk(data_dir: Path) -> None:
    live = start(data_dir / "sync", profile="instant")
    try:
        output = client_for(live).run(
            T2V, {"prompt": PROMPT, "seed": 5}, enable_sync_mode=True
        )
        assert output["outputs"][0].endswith(".mp4")
    finally:
        live.stop()


def test_get_result_works_after_a_restart(data_dir: Path) -> None:
    first = start(data_dir / "restart", profile="instant")
    pid = httpx.post(
        first.url + "/api/v3/" + T2V,
        json={"prompt": PROMPT, "seed": 9},
        headers={"Authorization": "Bearer test-key"},
    ).json()["data"]["id"]
    client_for(first).run(T2V, {"prompt": PROMPT, "seed": 9}, poll_interval=0.05)
    first.stop()
    second = start(data_dir / "restart", profile="instant")
    try:
        # Its render may have been cut by the stop: the restart re-queues it.
        wait_until(
            lambda: client_for(second).get_result(pid)["data"]["status"] == "completed",
            timeout_s=120,
            what=f"{pid} completed after the restart",
        )
        result = client_for(second).get_result(pid)
        assert result["data"]["id"] == pid
    finally:
        second.stop()


def test_wrong_key_surfaces_as_the_sdks_submit_error(data_dir: Path) -> None:
    live = start(data_dir / "keys", api_keys=("right",))
    try:
        client = wavespeed.Client(api_key="wrong", base_url=live.url)
        with pytest.raises(RuntimeError, match="HTTP 401"):
            client.run(T2V, {"prompt": PROMPT})
    finally:
        live.stop()
