"""The npm ``wavespeed`` SDK (0.3.2), unmodified, end to end against a live mock.

The same path as ``test_sdk.py`` takes with the Python SDK, under node: upload
a file, run image-to-video with its URL, run text-to-video, run in sync mode;
each clip is fetched and read by ffmpeg. The synthetic engine renders real
clips. Skipped with a reason where node or npm is missing (``.ci/run``
installs them; in CI a skip of an ``sdk`` test fails the run).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from wavespeed_mock.mock_server.http.live import LiveServer

from .._video import probe
from ._support import checked_live_server
from .conftest import run_node

pytestmark = pytest.mark.sdk

I2V = "character-ai/ovi/image-to-video"
T2V = "character-ai/ovi/text-to-video"
PROMPT = "A knight in the rain. <S>I will defend this land.<E> <AUDCAP>Thunder rolls.<ENDAUDCAP>"

# What the README shows, as a script: ACTION and its JSON arguments in the
# environment, the outcome as the last line of stdout.
SCRIPT = """
const { Client } = require("wavespeed");
const args = JSON.parse(process.env.ARGS);
const client = new Client("npm-key", { baseUrl: process.env.BASE_URL });
const actions = {
  upload: () => client.upload(args.file).then((url) => ({ url })),
  run: () => client.run(args.model, args.input, { pollInterval: 0.05, ...args.options }),
};
actions[process.env.ACTION]().then(
  (value) => console.log("\\n" + JSON.stringify(value)),
  (err) => console.log("\\n" + JSON.stringify({ error: String(err && err.message || err) })),
);
"""


@pytest.fixture(scope="module")
def npm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # the synthetic engine: real clips for the SDK to fetch
    data = tmp_path_factory.mktemp("npm-data")
    with checked_live_server(data, synthetic=True, profile="polls:2") as live:
        yield live


def node(sdk: Path, server: LiveServer, action: str, **args: Any) -> dict[str, Any]:
    env = {"BASE_URL": server.url, "ACTION": action, "ARGS": json.dumps(args)}
    outcome = run_node(sdk, "readme_flow.js", SCRIPT, env)
    assert "error" not in outcome, outcome["error"]
    return outcome


def journal_paths(server: LiveServer) -> list[tuple[str, str]]:
    items = httpx.get(server.url + "/_mock/journal").json()["data"]["items"]
    return [(item["method"], item["path"]) for item in items]


def assert_a_clip(url: str, server: LiveServer, tmp_path: Path) -> str:
    assert url.startswith(server.url + "/outputs/")
    info = probe(httpx.get(url).content, tmp_path)
    assert "Duration: 00:00:05.0" in info, info
    assert "24 fps" in info and "Audio: aac" in info and "Video: h264" in info
    return info


def test_upload_then_image_to_video(
    npm_server: LiveServer, wavespeed_npm_sdk: Path, tmp_path: Path
) -> None:
    picture = tmp_path / "knight.png"
    Image.new("RGB", (320, 180), (40, 90, 160)).save(picture)
    url = node(wavespeed_npm_sdk, npm_server, "upload", file=str(picture))["url"]
    assert httpx.get(url).content == picture.read_bytes()

    output = node(
        wavespeed_npm_sdk, npm_server, "run",
        model=I2V, input={"image": url, "prompt": PROMPT, "seed": 42},
    )  # fmt: skip
    info = assert_a_clip(output["outputs"][0], npm_server, tmp_path)
    assert "960x544" in info  # a 16:9 image: Ovi's 720x720-area size
    assert ("POST", "/api/v3/media/uploads") in journal_paths(npm_server)


def test_text_to_video(
    npm_server: LiveServer, wavespeed_npm_sdk: Path, tmp_path: Path
) -> None:
    output = node(
        wavespeed_npm_sdk, npm_server, "run",
        model=T2V, input={"prompt": PROMPT, "size": "540*960", "seed": 3},
    )  # fmt: skip
    assert "540x960" in assert_a_clip(output["outputs"][0], npm_server, tmp_path)


def test_sync_mode_is_one_request(
    npm_server: LiveServer, wavespeed_npm_sdk: Path, tmp_path: Path
) -> None:
    # polls:N moves a task on by its polls, and a sync-mode submit has none
    profile = {"profile": "instant"}
    assert (
        httpx.post(npm_server.url + "/_mock/profile", json=profile).status_code == 200
    )
    before = journal_paths(npm_server)
    try:
        output = node(
            wavespeed_npm_sdk, npm_server, "run",
            model=T2V, input={"prompt": PROMPT, "seed": 7},
            options={"enableSyncMode": True},
        )  # fmt: skip
    finally:
        httpx.post(npm_server.url + "/_mock/profile", json={"profile": "polls:2"})
    calls = journal_paths(npm_server)[len(before) :]  # the journal holds API calls only
    assert calls == [("POST", "/api/v3/" + T2V)]  # no poll: the answer held the clip
    assert_a_clip(output["outputs"][0], npm_server, tmp_path)


def test_a_pipeline_of_catalogue_models(
    npm_server: LiveServer, wavespeed_npm_sdk: Path, tmp_path: Path
) -> None:
    # The integrations' default image model makes the first frame ...
    frame = node(
        wavespeed_npm_sdk, npm_server, "run",
        model="bytedance/seedream-v5.0-pro",
        input={"prompt": "A knight on a hill", "aspect_ratio": "16:9", "resolution": "1k"},
    )  # fmt: skip
    (image_url,) = frame["outputs"]
    image = httpx.get(image_url)
    assert image.headers["content-type"] == "image/jpeg"
    picture = tmp_path / "frame.jpg"
    picture.write_bytes(image.content)
    with Image.open(picture) as opened:
        assert opened.size == (1024, 576)  # 1k names the long side
    # ... it is uploaded, Ovi animates it, and an upscaler takes the clip.
    url = node(wavespeed_npm_sdk, npm_server, "upload", file=str(picture))["url"]
    clip = node(
        wavespeed_npm_sdk, npm_server, "run",
        model=I2V, input={"image": url, "prompt": PROMPT, "seed": 5},
    )  # fmt: skip
    assert_a_clip(clip["outputs"][0], npm_server, tmp_path)
    upscaled = node(
        wavespeed_npm_sdk, npm_server, "run",
        model="wavespeed-ai/video-upscaler",
        input={"video": clip["outputs"][0], "target_resolution": "720p"},
    )  # fmt: skip
    info = probe(httpx.get(upscaled["outputs"][0]).content, tmp_path)
    assert "1280x720" in info and "Video: h264" in info
