"""A tiny fake WaveSpeed target on httpx.MockTransport, and real MP4 clips."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import imageio_ffmpeg
import pytest
from wavespeed_mock.contracts import get_model, is_valid_request

BASE_URL = "https://fake.test"


@cache
def _clip(tmp: Path, fps: int, seconds: float, audio: bool) -> bytes:
    out = tmp / f"clip-{fps}-{seconds}-{audio}.mp4"
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc=size=64x64:rate={fps}:duration={seconds}",
    ]
    if audio:
        command += [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-c:a",
            "aac",
        ]
    command += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-shortest", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return out.read_bytes()


@pytest.fixture(scope="session")
def make_clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., bytes]:
    """A real MP4 (64x64 test pattern, optional 440 Hz tone), made once per shape."""
    folder = tmp_path_factory.mktemp("clips")

    def make(*, fps: int = 24, seconds: float = 5.0, audio: bool = True) -> bytes:
        return _clip(folder, fps, seconds, audio)

    return make


@pytest.fixture(scope="session")
def clip(make_clip: Callable[..., bytes]) -> bytes:
    """What the contract promises: MP4, 24 fps, 5 s, with audio."""
    return make_clip()


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


def _envelope(status: int, message: str) -> httpx.Response:
    return _json(status, {"code": status, "message": message})


@dataclass
class FakeWavespeed:
    """A WaveSpeed-like target whose misbehaviours a test switches on.

    Each valid submit creates a task whose successive polls answer ``statuses``
    (the last one repeats).
    """

    clip: bytes
    statuses: list[str] = field(
        default_factory=lambda: ["created", "processing", "completed"]
    )
    submit_status: int = 200
    include_id: bool = True
    bad_body: str = "400"  # "400", "422", "task-1400", or anything else: run it
    auth_status: int = 401
    auth_envelope: bool = True
    not_found_status: int = 404
    ticket_ok: bool = True
    binary_ok: bool = True
    output: bytes | None = None
    requests: list[httpx.Request] = field(default_factory=list)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path.startswith("/storage/"):
            if request.method == "PUT":
                self.uploads[path] = request.content
                return _envelope(200, "stored")
            return httpx.Response(200, content=self.uploads.get(path, b""))
        if path.startswith("/outputs/"):
            data = self.clip if self.output is None else self.output
            return httpx.Response(
                200, content=data, headers={"content-type": "video/mp4"}
            )
        if not request.headers.get("authorization", "").startswith("Bearer "):
            if not self.auth_envelope:
                return httpx.Response(self.auth_status, text="<html>denied</html>")
            return _envelope(self.auth_status, "Unauthorized: invalid authentication")
        if path == "/api/v3/media/uploads":
            if not self.ticket_ok:
                return _envelope(404, "no such route")
            name = json.loads(request.content)["filename"]
            return _json(
                200,
                {
                    "code": 200,
                    "message": "success",
                    "data": {
                        "download_url": f"{BASE_URL}/storage/{name}",
                        "upload": {
                            "method": "PUT",
                            "url": f"{BASE_URL}/storage/{name}",
                            "headers": {"Content-Type": "image/png"},
                        },
                    },
                },
            )
        if path == "/api/v3/media/upload/binary":
            if not self.binary_ok:
                return _envelope(500, "broken")
            body = request.content  # multipart: the PNG sits between the boundaries
            png = body[body.index(b"\x89PNG") : body.rindex(b"\r\n--")]
            self.uploads["/storage/binary.png"] = png
            return _json(
                200,
                {
                    "code": 200,
                    "data": {"download_url": f"{BASE_URL}/storage/binary.png"},
                },
            )
        if path.startswith("/api/v3/predictions/") and path.endswith("/result"):
            return self._poll(path.split("/")[4])
        if request.method == "POST" and path.startswith("/api/v3/"):
            return self._submit(
                path.removeprefix("/api/v3/"), json.loads(request.content)
            )
        return _envelope(404, "not found")

    def _submit(self, model: str, body: dict[str, Any]) -> httpx.Response:
        get_model(model)
        statuses = self.statuses
        if not is_valid_request(model, body):
            if self.bad_body == "400":
                return _envelope(400, "$.image: 'image' is required but missing")
            if self.bad_body == "422":
                return _envelope(422, "unprocessable")
            if self.bad_body == "task-1400":
                statuses = ["created", "failed"]
        task_id = uuid.uuid4().hex
        self.tasks[task_id] = {"model": model, "statuses": statuses, "polls": 0}
        data = self._prediction(task_id, "created")
        if not self.include_id:
            del data["id"]
        return _json(
            self.submit_status, {"code": 200, "message": "success", "data": data}
        )

    def _poll(self, task_id: str) -> httpx.Response:
        task = self.tasks.get(task_id)
        if task is None:
            return _envelope(self.not_found_status, "Task not found")
        statuses = task["statuses"]
        status = statuses[min(task["polls"], len(statuses) - 1)]
        task["polls"] += 1
        return _json(
            200,
            {
                "code": 200,
                "message": "success",
                "data": self._prediction(task_id, status),
            },
        )

    def _prediction(self, task_id: str, status: str) -> dict[str, Any]:
        task = self.tasks[task_id]
        done = status == "completed"
        failed_code = 1400 if task["statuses"] == ["created", "failed"] else 1403
        return {
            "id": task_id,
            "model": task["model"],
            "outputs": [f"{BASE_URL}/outputs/{task_id}.mp4"] if done else [],
            "urls": {"get": f"{BASE_URL}/api/v3/predictions/{task_id}/result"},
            "has_nsfw_contents": [False] if done else [],
            "status": status,
            "created_at": "2026-09-01T10:00:00.123Z",
            "error": "" if status != "failed" else "Missing parameter",
            "code": 0 if status != "failed" else failed_code,
            "executionTime": 0,
            "timings": {"inference": 0},
        }


@pytest.fixture
def fake(clip: bytes) -> FakeWavespeed:
    return FakeWavespeed(clip=clip)
