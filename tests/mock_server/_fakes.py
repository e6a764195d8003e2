"""Small stand-ins for the server tests that are not about media."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from wavespeed_mock.mock_server import RenderFailed, RenderJob, RenderResult

# A tiny but real-looking MP4 header; the server only serves the bytes.
FAKE_MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(range(256)) * 8


class FakeEngine:
    """Writes a fixed file at once; can be told to fail or to wait."""

    name: ClassVar[str] = "fake"
    max_concurrency: ClassVar[int] = 2
    reports_progress: ClassVar[bool] = False
    options: ClassVar[tuple[Any, ...]] = ()
    default_profile: ClassVar[str | None] = None
    default_sync_wait_s: ClassVar[float | None] = None

    def __init__(self) -> None:
        self.jobs: list[RenderJob] = []
        self.fail_with: RenderFailed | Exception | None = None
        self.gate = threading.Event()
        self.gate.set()
        self.closed = False
        self.device: str | None = None
        """The device each render says it ran on."""

    def render(self, job: RenderJob) -> RenderResult:
        self.jobs.append(job)
        if not self.gate.wait(30):
            raise RuntimeError("gate never opened")
        if self.closed:
            raise RuntimeError("engine closed while rendering")
        if self.fail_with is not None:
            raise self.fail_with
        job.output_path.write_bytes(FAKE_MP4)
        return RenderResult(inference_ms=1234, nsfw=(False,), device=self.device)

    def close(self) -> None:
        self.closed = True
        self.gate.set()


class ProgressEngine(FakeEngine):
    """Reports when it really starts, like a GPU engine."""

    reports_progress: ClassVar[bool] = True
    max_concurrency: ClassVar[int] = 1

    def render(self, job: RenderJob) -> RenderResult:
        self.jobs.append(job)
        if not self.gate.wait(30):
            raise RuntimeError("gate never opened")
        assert job.on_start is not None
        job.on_start()
        self.started.set()
        if not self.finish.wait(30):
            raise RuntimeError("finish never set")
        job.output_path.write_bytes(FAKE_MP4)
        return RenderResult(inference_ms=77)

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.finish = threading.Event()

    def close(self) -> None:
        self.gate.set()
        self.finish.set()


def fake_engine(server: Any) -> FakeEngine:
    """The fake engine of a live or in-process server (a typed handle for tests)."""
    engine = server.service.engine
    assert isinstance(engine, FakeEngine), f"the server runs {engine!r}, not a fake"
    return engine
