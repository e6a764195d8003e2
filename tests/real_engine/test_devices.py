"""Every GPU: one worker per device of ``--ovi-devices``, each job to an idle one,
first in first out. The stand-in plays the GPUs (each worker sees its own
``CUDA_VISIBLE_DEVICES``)."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from wavespeed_mock.mock_server.core.engine import RenderFailed, RenderJob
from wavespeed_mock.real_engine import OviEngine, OviOptions, OviWorkerError

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


def started_on(fake: OviHarness, job: RenderJob) -> str | None:
    """The GPU the stand-in saw for ``job``'s call."""
    for call in fake.calls():
        if call["kwargs"]["text_prompt"] == job.prompt:
            gpu: str | None = call["gpu"]
            return gpu
    return None


def test_one_worker_per_device_each_pinned_to_its_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fake = start_fake_ovi(tmp_path, monkeypatch, devices="0,1,2")
    with fake.engine:
        assert fake.engine.devices == (0, 1, 2)
        # as GET /_mock/workers lists them, and as each result names its own
        assert fake.engine.device_names == ("cuda:0", "cuda:1", "cuda:2")
        assert fake.engine.max_concurrency == 3  # the server runs three renders
        wait_for(lambda: fake.engine.ready_devices == (0, 1, 2), "every GPU loaded")
        pids = fake.engine.worker_pids
        assert len(set(pids)) == 3 and None not in pids
        # Loaded one after the other, each on its own GPU.
        assert [load["gpu"] for load in fake.loads()] == ["0", "1", "2"]


def test_jobs_go_to_idle_workers_first_in_first_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fake = start_fake_ovi(tmp_path, monkeypatch, devices="0,1")
    order: list[str] = []
    lock = threading.Lock()
    events: dict[str, threading.Event] = {}

    def on_start(name: str) -> Callable[[], None]:
        events[name] = threading.Event()

        def record() -> None:
            with lock:
                order.append(name)
            events[name].set()

        return record

    with fake.engine:
        gate_a, gate_b, gate_c = fake.gate(), fake.gate(), fake.gate()
        a = fake.job(f"{gate_a.tag} a", on_start=on_start("a"))
        b = fake.job(f"{gate_b.tag} b", on_start=on_start("b"))
        c = fake.job(f"{gate_c.tag} c", on_start=on_start("c"))
        d = fake.job("d", on_start=on_start("d"))
        results = {"a": in_background(lambda: fake.engine.render(a))}
        assert events["a"].wait(WAIT_S)
        results["b"] = in_background(lambda: fake.engine.render(b))
        assert events["b"].wait(WAIT_S)  # both GPUs busy at once
        results["c"] = in_background(lambda: fake.engine.render(c))
        wait_for(lambda: fake.queued() == 1, "c to queue")
        results["d"] = in_background(lambda: fake.engine.render(d))
        wait_for(lambda: fake.queued() == 2, "d to queue behind c")
        assert order == ["a", "b"]

        gate_b.open()  # b's GPU is free first: the oldest job, c, goes there
        assert events["c"].wait(WAIT_S)
        done_b = results["b"].result(timeout=WAIT_S)
        assert not events["d"].is_set()  # d waits: both GPUs are busy again
        assert fake.queued() == 1

        gate_a.open()  # then d goes to a's GPU
        assert events["d"].wait(WAIT_S)
        done_a = results["a"].result(timeout=WAIT_S)
        done_d = results["d"].result(timeout=WAIT_S)
        gate_c.open()
        done_c = results["c"].result(timeout=WAIT_S)

    assert order == ["a", "b", "c", "d"]
    gpu_a, gpu_b = started_on(fake, a), started_on(fake, b)
    assert {gpu_a, gpu_b} == {"0", "1"}
    assert started_on(fake, c) == gpu_b
    assert started_on(fake, d) == gpu_a
    # Each result names the GPU it ran on (GET /_mock/predictions shows it).
    assert (done_a.device, done_d.device) == (f"cuda:{gpu_a}", f"cuda:{gpu_a}")
    assert (done_b.device, done_c.device) == (f"cuda:{gpu_b}", f"cuda:{gpu_b}")
    for job in (a, b, c, d):
        assert job.output_path.exists()


def test_a_worker_that_cannot_reload_leaves_its_jobs_to_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fake = start_fake_ovi(
        tmp_path,
        monkeypatch,
        devices="0,1",
        engine_args={"restart_backoff_s": 3600},
    )
    with fake.engine:
        monkeypatch.setenv("WAVESPEED_FAKE_OVI_LOAD", "killed")
        dying = fake.job("[fake:die] dies")
        with pytest.raises(RenderFailed) as failed:
            render_within(fake.engine, dying)
        assert failed.value.code == 5000
        dead_gpu = started_on(fake, dying)
        wait_for(lambda: len(fake.loads()) == 3, "the failed reload")
        # Every later job runs on the other GPU; none fails, none waits for ever.
        jobs = [fake.job(f"job {n}") for n in range(3)]
        for job in jobs:
            render_within(fake.engine, job)
            assert job.output_path.exists()
            assert started_on(fake, job) not in (dead_gpu, None)
        assert len(fake.loads()) == 3  # the broken one rests


def test_close_stops_every_worker_and_fails_the_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fake = start_fake_ovi(tmp_path, monkeypatch, devices="0,1")
    started = [threading.Event(), threading.Event()]
    busy = [
        fake.job(f"{fake.gate().tag} busy {n}", on_start=started[n].set)
        for n in range(2)
    ]
    running = [in_background(lambda j=job: fake.engine.render(j)) for job in busy]
    for event in started:
        assert event.wait(WAIT_S)
    queued = in_background(lambda: fake.engine.render(fake.job("queued")))
    wait_for(lambda: fake.queued() == 1, "a job to queue")
    close_within(fake.engine)
    for future in [*running, queued]:
        with pytest.raises(RenderFailed, match="closed") as failed:
            future.result(timeout=WAIT_S)
        assert failed.value.code == 5003
    assert fake.engine.worker_pids == (None, None)


def test_devices_from_the_flag_or_a_list():
    assert OviOptions(devices="1, 3").device_list == (1, 3)
    assert OviOptions(device=2).device_list == (2,)
    assert OviOptions.from_mapping({"devices": [0, 1]}).device_list == (0, 1)


def test_dead_workers_reload_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # After a host out-of-memory kill every worker is dead; reloading them all
    # at once would need every model's host memory at once.
    fake = start_fake_ovi(
        tmp_path, monkeypatch, devices="0,1", engine_args={"restart_backoff_s": 0}
    )
    try:
        loaded = len(fake.loads())
        gate = tmp_path / "reload-gate"
        monkeypatch.setenv("WAVESPEED_FAKE_OVI_LOAD", f"wait:{gate}")
        for pid in fake.engine.worker_pids:
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: not any(s.worker.alive for s in fake.engine._slots),
            "both workers to be dead",
        )
        jobs = [fake.job(f"after the kill {n}") for n in range(2)]
        rendering = [in_background(lambda j=job: fake.engine.render(j)) for job in jobs]
        wait_for(lambda: len(fake.loads()) == loaded + 1, "the first reload")
        assert (
            fake.engine._reloading.locked()
        )  # it holds in its load: the turn is taken
        gate.touch()
        for future in rendering:
            future.result(timeout=WAIT_S)
        reloads = fake.loads()[loaded:]
        assert len(reloads) == 2
        # The second reload began only after the first had finished loading.
        finished = json.loads(
            (fake.record.with_name("loaded.jsonl")).read_text().splitlines()[loaded]
        )
        assert finished["pid"] == reloads[0]["pid"]
        assert reloads[1]["at"] >= finished["at"]
    finally:
        close_within(fake.engine)


def test_the_engine_is_ready_with_its_first_gpu_while_the_others_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # On an 8-GPU host the server would otherwise open its port after eight loads.
    gate = tmp_path / "gpu-1-may-load"
    fake = start_fake_ovi(
        tmp_path,
        monkeypatch,
        devices="0,1",
        load=(f"wait:{gate}", "1"),
        all_loaded=False,
    )
    with fake.engine:
        assert fake.engine.ready_devices == (0,)  # GPU 1 is still loading
        job = fake.job("served by the first GPU")
        render_within(fake.engine, job)
        assert started_on(fake, job) == "0"
        gate.touch()
        wait_for(lambda: fake.engine.ready_devices == (0, 1), "GPU 1 loaded")
        gate_a, started = fake.gate(), threading.Event()
        a_job = fake.job(f"{gate_a.tag} a", on_start=started.set)
        a = in_background(lambda: fake.engine.render(a_job))
        assert started.wait(WAIT_S)
        b_job = fake.job("b")
        render_within(fake.engine, b_job)  # one GPU holds a: b runs on the other
        gate_a.open()
        a.result(timeout=WAIT_S)
        assert {started_on(fake, a_job), started_on(fake, b_job)} == {"0", "1"}


def test_a_gpu_that_cannot_load_is_left_out_and_the_others_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fake = start_fake_ovi(
        tmp_path,
        monkeypatch,
        devices="0,1",
        load=("fail", "0"),
        engine_args={"restart_backoff_s": 3600},
    )
    with fake.engine:
        assert fake.engine.ready_devices == (1,)
        for n in range(2):
            job = fake.job(f"job {n}")
            render_within(fake.engine, job)
            assert started_on(fake, job) == "1"


def test_no_gpu_that_can_load_fails_the_start_naming_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("WAVESPEED_FAKE_OVI_LOAD", "fail")
    with pytest.raises(OviWorkerError) as failed:
        OviEngine(OviOptions(devices="0,1"), factory=FAKE_FACTORY)
    message = str(failed.value)
    assert "No GPU could load the Ovi model" in message
    assert "GPU 0: " in message and "GPU 1: " in message
    assert "checkpoint could not be loaded" in message
