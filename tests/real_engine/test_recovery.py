"""Workers that die: while loading, while rendering, and reloads that fail too.

Regression tests for two bugs: a worker killed while loading raised
``ValueError: process object is closed`` instead of the engine's error, and a
failed reload killed the dispatcher thread, after which every render waited for
ever. Every wait here is bounded (``WAIT_S``) and runs on a daemon thread, so a
regression fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from wavespeed_mock.mock_server.core.engine import RenderFailed
from wavespeed_mock.real_engine import OviEngine, OviWorkerError

from .conftest import (
    FAKE_FACTORY,
    WAIT_S,
    OviHarness,
    close_within,
    in_background,
    render_within,
    start_fake_ovi,
    wait_for,
)


def test_a_worker_killed_while_loading_fails_the_start_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
):
    # What the host's OOM killer does to a worker reading 38 GB of checkpoints.
    monkeypatch.setenv("WAVESPEED_FAKE_OVI_LOAD", "killed")
    with pytest.raises(OviWorkerError) as failed:
        OviEngine(factory=FAKE_FACTORY)
    message = str(failed.value)
    assert "exit code -9, killed by SIGKILL" in message
    assert "while loading the model" in message
    assert "host out of memory" in message


def test_a_load_that_outlasts_its_timeout_fails_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("WAVESPEED_FAKE_OVI_LOAD", f"wait:{tmp_path / 'never'}")
    with pytest.raises(OviWorkerError, match="did not load the model within 1 s"):
        OviEngine(factory=FAKE_FACTORY, load_timeout_s=1)


def test_killed_rendering_then_killed_reloading_fails_every_job_with_a_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fake = start_fake_ovi(tmp_path, monkeypatch, engine_args={"restart_backoff_s": 0})
    engine = fake.engine
    try:
        first_pid = engine.worker_pid
        # The reload after the crash holds in its load until the test kills it.
        monkeypatch.setenv("WAVESPEED_FAKE_OVI_LOAD", f"wait:{tmp_path / 'never'}")
        render_gate = fake.gate()
        started = threading.Event()
        dying = fake.job(f"{render_gate.tag} [fake:die]", on_start=started.set)
        queued = fake.job("queued behind the crash")
        crashed = in_background(lambda: engine.render(dying))
        assert started.wait(WAIT_S)
        waiting = in_background(lambda: engine.render(queued))
        wait_for(lambda: fake.queued() == 1, "the second job to queue")
        render_gate.open()  # the worker dies in the middle of the clip
        with pytest.raises(RenderFailed, match="died while rendering") as failed:
            crashed.result(timeout=WAIT_S)
        assert failed.value.code == 5000

        wait_for(lambda: len(fake.loads()) == 2, "the reload to begin")
        # Every later load is killed too: the reload that fails as well.
        monkeypatch.setenv("WAVESPEED_FAKE_OVI_LOAD", "killed")
        os.kill(fake.loads()[-1]["pid"], signal.SIGKILL)

        with pytest.raises(RenderFailed, match="unavailable") as failed:
            waiting.result(timeout=WAIT_S)
        assert failed.value.code == 5003
        assert "killed by SIGKILL" in str(failed.value)
        assert not queued.output_path.exists()

        later = fake.job("after the failed reloads")
        with pytest.raises(RenderFailed, match="unavailable") as failed:
            render_within(engine, later)
        assert failed.value.code == 5003

        # Once loading works again, the next job gets a fresh worker.
        monkeypatch.delenv("WAVESPEED_FAKE_OVI_LOAD")
        assert_a_new_worker_renders(fake, first_pid)
    finally:
        close_within(engine)


def test_an_unrecoverable_cuda_error_replaces_the_worker_and_logs_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
):
    # After an illegal memory access every later kernel of that process fails:
    # the worker must not be kept for the next clip.
    fake = start_fake_ovi(tmp_path, monkeypatch, engine_args={"restart_backoff_s": 0})
    engine = fake.engine
    try:
        first_pid = engine.worker_pid
        with pytest.raises(RenderFailed, match="worker is replaced") as failed:
            render_within(engine, fake.job("[fake:cuda-error]"))
        assert failed.value.code == 5000
        assert "illegal memory access" in str(failed.value)
        assert_a_new_worker_renders(fake, first_pid)
        # Ovi's whole traceback reached the server's log (the worker's stderr).
        logged = capfd.readouterr().err
        assert "Traceback (most recent call last)" in logged
        assert "clip " in logged and "illegal memory access" in logged
    finally:
        close_within(engine)


def test_a_worker_whose_reload_failed_rests_before_the_next_try(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fake = start_fake_ovi(
        tmp_path, monkeypatch, engine_args={"restart_backoff_s": 3600}
    )
    engine = fake.engine
    try:
        monkeypatch.setenv("WAVESPEED_FAKE_OVI_LOAD", "killed")
        with pytest.raises(RenderFailed) as failed:
            render_within(engine, fake.job("[fake:die]"))
        assert failed.value.code == 5000
        wait_for(lambda: len(fake.loads()) == 2, "the reload to be tried")
        # Each job now fails at once, naming the reason, and loads nothing.
        for _ in range(2):
            job = fake.job()
            with pytest.raises(RenderFailed, match="next reload is in") as failed:
                render_within(engine, job)
            assert failed.value.code == 5003
            assert "killed by SIGKILL" in str(failed.value)
        assert len(fake.loads()) == 2
    finally:
        close_within(engine)


def test_a_render_that_outlasts_its_timeout_fails_and_the_worker_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fake = start_fake_ovi(tmp_path, monkeypatch, engine_args={"render_timeout_s": 1})
    engine = fake.engine
    try:
        pid = engine.worker_pid
        stuck = fake.job(f"{fake.gate().tag} never ends")
        with pytest.raises(RenderFailed, match="within 1 s") as failed:
            render_within(engine, stuck)
        assert failed.value.code == 5004
        # The stuck worker was killed and replaced (a render here could itself
        # outlast a 1 s limit on a busy machine, so none is asked for).
        wait_for(
            lambda: (
                engine.worker_pid not in (pid, None) and engine._slots[0].worker.alive
            ),
            "a new worker",
        )
        assert pid is not None and not _alive(pid)
    finally:
        close_within(engine)


def test_close_ends_a_reload_in_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fake = start_fake_ovi(tmp_path, monkeypatch)
    engine = fake.engine
    monkeypatch.setenv("WAVESPEED_FAKE_OVI_LOAD", f"wait:{tmp_path / 'never'}")
    with pytest.raises(RenderFailed):
        render_within(engine, fake.job("[fake:die]"))
    wait_for(lambda: len(fake.loads()) == 2, "the reload to begin")
    loading = fake.loads()[-1]["pid"]
    # close() does not wait out the load (up to load_timeout_s, 30 min by default).
    close_within(engine)
    wait_for(lambda: not _alive(loading), "the loading worker to be gone")
    with pytest.raises(RenderFailed, match="closed"):
        engine.render(fake.job())


def assert_a_new_worker_renders(fake: OviHarness, old_pid: int | None) -> None:
    job = fake.job("after the failure")
    render_within(fake.engine, job)
    assert job.output_path.exists()
    assert fake.engine.worker_pid not in (old_pid, None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_worker_ends_when_its_server_is_killed_mid_clip(tmp_path: Path):
    # kill -9 of the server cannot stop its workers; one left running would
    # finish its clip holding the GPU's memory beside the restarted server.
    gate = tmp_path / "never"  # the clip waits for this file, which never comes
    script = f"""
import os, sys, threading
from pathlib import Path
from wavespeed_mock.mock_server.core.engine import RenderJob
from wavespeed_mock.real_engine import OviEngine
engine = OviEngine(factory={FAKE_FACTORY!r})
job = RenderJob(prediction_id="p", model="character-ai/ovi/text-to-video",
    prompt="[fake:wait={gate}]", seed=1, width=64, height=48,
    output_path=Path({str(tmp_path / "p.mp4")!r}),
    on_start=lambda: print("rendering", engine.worker_pid, flush=True))
threading.Thread(target=engine.render, args=(job,), daemon=True).start()
threading.Event().wait()
"""
    env = {
        **os.environ,
        "WAVESPEED_FAKE_OVI_RECORD": str(tmp_path / "calls.jsonl"),
        "WAVESPEED_FAKE_OVI_FRAME": "48x64",
    }
    env.pop("CUDA_VISIBLE_DEVICES", None)
    server = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # blocks until the clip started
        assert line.startswith("rendering "), line
        worker = int(line.split()[1])
        assert _alive(worker)
        server.kill()
        server.wait(timeout=WAIT_S)
        wait_for(lambda: not _alive(worker), "the worker to end with its server")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=WAIT_S)
        if server.stdout is not None:
            server.stdout.close()
