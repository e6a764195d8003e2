"""Fixtures for the real engine's tests: an OviEngine whose worker builds the
stand-in from ``fake_ovi.py`` instead of Ovi, and helpers to read its clips."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image
from wavespeed_mock.mock_server.core.engine import RenderJob
from wavespeed_mock.real_engine import OviEngine, OviOptions

from .._video import decode_frames
from ..mock_server._support import in_thread as in_background

FAKE_OVI = Path(__file__).with_name("fake_ovi.py")
FAKE_FACTORY = f"{FAKE_OVI}:FakeOviFusionEngine"
I2V = "character-ai/ovi/image-to-video"
T2V = "character-ai/ovi/text-to-video"
_ids = itertools.count()
WAIT_S = 60.0
"""The bound on every wait in these tests: generous, since it only ends a failure."""


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Return once ``condition()`` holds; fail the test after ``WAIT_S``."""
    __tracebackhide__ = True
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {WAIT_S:.0f} s waiting for {what}")
        time.sleep(0.005)


@dataclass(frozen=True)
class Gate:
    """A file the stand-in waits for (``[fake:wait=PATH]``): a render holds the
    "GPU" until the test opens the gate."""

    path: Path

    @property
    def tag(self) -> str:
        return f"[fake:wait={self.path}]"

    def open(self) -> None:
        self.path.touch()


def png(
    width: int = 64,
    height: int = 48,
    color: tuple[int, ...] = (200, 30, 90),
    mode: str = "RGB",
) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class OviHarness:
    """An engine running the stand-in, with what the stand-in was called with."""

    engine: OviEngine
    record: Path
    output_dir: Path

    def calls(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        lines = self.record.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line]

    def last_call(self) -> dict[str, Any]:
        return self.calls()[-1]

    def call_count(self) -> int:
        """Calls recorded so far; safe while the stand-in is writing (whole lines)."""
        if not self.record.exists():
            return 0
        return self.record.read_text(encoding="utf-8").count("\n")

    def loads(self) -> list[dict[str, Any]]:
        """One entry per model load the stand-in began (its pid and GPU)."""
        path = self.record.with_name("loads.jsonl")
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line]

    def gate(self) -> Gate:
        return Gate(self.record.parent / f"gate-{next(_ids)}")

    def queued(self) -> int:
        """Jobs waiting behind the one the worker has (the engine's queue)."""
        return self.engine._queue.qsize()

    def job(
        self,
        prompt: str = "A cat says <S>hello<E>.",
        *,
        model: str = I2V,
        seed: int = 42,
        image: bytes | None = None,
        width: int | None = None,
        height: int | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> RenderJob:
        number = next(_ids)
        if model == I2V and image is None:
            image = png()
        return RenderJob(
            prediction_id=f"pred-{number}",
            model=model,
            prompt=prompt,
            seed=seed,
            width=width,
            height=height,
            output_path=self.output_dir / f"pred-{number}.mp4",
            image=image,
            image_source="data:image/png;base64,..." if image else "",
            on_start=on_start,
        )


def start_fake_ovi(
    tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    frame: str = "48x64",
    factory: str = FAKE_FACTORY,
    engine_args: dict[str, Any] | None = None,
    load: tuple[str, str] | None = None,
    all_loaded: bool = True,
    **options: Any,
) -> OviHarness:
    """Spawn an engine on the stand-in; the variables stay set for restarts.

    ``options`` are :class:`OviOptions` fields (``checkout=...``), ``engine_args``
    the engine's own keywords (``restart_backoff_s=...``), ``load`` a load
    behaviour and the GPU whose worker has it (``("fail", "0")``, see fake_ovi).
    The engine is ready with its first GPU; with ``all_loaded`` this waits for
    every GPU's load to end too.
    """
    record = tmp / "calls.jsonl"
    monkeypatch.setenv("WAVESPEED_FAKE_OVI_RECORD", str(record))
    monkeypatch.setenv("WAVESPEED_FAKE_OVI_FRAME", frame)
    monkeypatch.delenv("WAVESPEED_FAKE_OVI_LOAD", raising=False)
    monkeypatch.delenv("WAVESPEED_FAKE_OVI_LOAD_GPU", raising=False)
    if load is not None:
        monkeypatch.setenv("WAVESPEED_FAKE_OVI_LOAD", load[0])
        monkeypatch.setenv("WAVESPEED_FAKE_OVI_LOAD_GPU", load[1])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    engine = OviEngine(OviOptions(**options), factory=factory, **(engine_args or {}))
    if all_loaded:
        wait_for(
            lambda: not any(slot.loading for slot in engine._slots), "every GPU's load"
        )
    return OviHarness(engine, record, tmp / "out")


def render_within(engine: OviEngine, job: RenderJob) -> Any:
    """``engine.render(job)`` on a daemon thread, waited for at most ``WAIT_S``:
    a render that would hang fails the test instead of hanging it."""
    return in_background(lambda: engine.render(job)).result(timeout=WAIT_S)


def close_within(engine: OviEngine) -> None:
    """``engine.close()``, bounded like :func:`render_within`."""
    in_background(engine.close).result(timeout=WAIT_S)


@pytest.fixture(scope="module")
def wavespeed_fake_ovi(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OviHarness]:
    """One engine on the stand-in, shared by a module (spawning costs ~0.5 s)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        fake = start_fake_ovi(tmp_path_factory.mktemp("fake-ovi"), monkeypatch)
        try:
            yield fake
        finally:
            fake.engine.close()


@dataclass(frozen=True)
class Clip:
    frames: int
    seconds: float
    width: int
    height: int
    fps: float
    audio: str | None
    audio_seconds: float | None
    first_frame: np.ndarray


def probe(path: Path) -> Clip:
    """What the MP4 holds, from the bundled ffmpeg."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    banner = subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    ).stderr
    video = re.search(r"Video: .*?, (\d+)x(\d+)[ ,].*?([\d.]+) fps", banner)
    assert video, banner
    audio = re.search(r"Audio: (\w+)", banner)
    # The audio stream's own length: decode it to nothing and read the last time.
    decoded = subprocess.run(
        [
            ffmpeg,
            "-hide_banner",
            "-nostdin",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stderr
    times = re.findall(r"time=(\d+):(\d+):([\d.]+)", decoded)
    audio_seconds = None
    if times:
        h, m, s = times[-1]
        audio_seconds = int(h) * 3600 + int(m) * 60 + float(s)
    first = decode_frames(path, 1)[0]
    return Clip(
        frames,
        seconds,
        int(video[1]),
        int(video[2]),
        float(video[3]),
        audio[1] if audio else None,
        audio_seconds,
        first.copy(),
    )


@contextlib.contextmanager
def serve_in_child(
    args: list[str],
    tmp: Path,
    *,
    env: dict[str, str] | None = None,
    wait_s: float = WAIT_S,
) -> Iterator[str]:
    """``wavespeed-mock serve ARGS`` in a child process, as a user starts it.

    Yields its base URL once ``/_mock/health`` answers (the engine has loaded);
    fails with the server's output if it exits or does not answer in ``wait_s``.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = tmp / f"serve-{port}.log"
    command = [sys.executable, "-m", "wavespeed_mock.mock_server", "serve", *args]
    command += ["--port", str(port), "--data-dir", str(tmp / f"data-{port}")]
    with log_path.open("w") as log:
        server = subprocess.Popen(
            command,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_serving(server, url, log_path, wait_s)
            yield url
        finally:
            stop_child(server)


def stop_child(child: subprocess.Popen[bytes], grace_s: float = 60.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``grace_s``."""
    child.terminate()
    try:
        child.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=30)


def _wait_until_serving(
    server: subprocess.Popen[bytes], url: str, log: Path, wait_s: float
) -> None:
    __tracebackhide__ = True
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(
                f"serve exited ({server.returncode}):\n{log.read_text()[-4000:]}"
            )
        try:
            if httpx.get(f"{url}/_mock/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"serve did not answer in {wait_s:.0f} s:\n{log.read_text()[-4000:]}")


def clip_outputs(url: str) -> list[bytes]:
    """Every completed prediction's MP4 on the server at ``url``."""
    clips = []
    items = httpx.get(f"{url}/_mock/predictions", timeout=30).json()["data"]["items"]
    for item in items:
        answer = httpx.get(
            f"{url}/api/v3/predictions/{item['id']}/result",
            headers={"Authorization": "Bearer test-key"},
            timeout=30,
        ).json()["data"]
        for output in answer.get("outputs") or []:
            clips.append(httpx.get(output, timeout=60).content)
    return clips
