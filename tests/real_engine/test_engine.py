"""OviEngine end to end on the stand-in: mapping, failures, queueing, restarts, MP4s."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from wavespeed_mock.mock_server.core.engine import (
    RenderFailed,
    RenderJob,
    RenderResult,
)
from wavespeed_mock.real_engine import OviEngine
from wavespeed_mock.real_engine._frames import video_frames

from .._video import decode_frames
from .conftest import (
    FAKE_OVI,
    T2V,
    WAIT_S,
    OviHarness,
    png,
    probe,
    start_fake_ovi,
    wait_for,
)
from .fake_ovi import _video as fake_ovi_video


def test_every_generation_parameter_is_passed_explicitly(
    wavespeed_fake_ovi: OviHarness,
):
    wavespeed_fake_ovi.engine.render(wavespeed_fake_ovi.job(seed=7))
    kwargs = wavespeed_fake_ovi.last_call()["kwargs"]
    # Not Ovi's function defaults (5.0 / 4.0 / 9 / empty negatives): its YAML's.
    assert kwargs == {
        "text_prompt": "A cat says <S>hello<E>.",
        "image_path": kwargs["image_path"],
        "video_frame_height_width": None,
        "seed": 7,
        "solver_name": "unipc",
        "sample_steps": 50,
        "shift": 5.0,
        "video_guidance_scale": 4.0,
        "audio_guidance_scale": 3.0,
        "slg_layer": 11,
        "video_negative_prompt": "jitter, bad hands, blur, distortion",
        "audio_negative_prompt": "robotic, muffled, echo, distorted",
    }


def test_image_is_handed_over_as_an_rgb_pil_image(wavespeed_fake_ovi: OviHarness):
    image = png(96, 40, (10, 20, 30, 128), mode="RGBA")
    wavespeed_fake_ovi.engine.render(wavespeed_fake_ovi.job(image=image))
    assert wavespeed_fake_ovi.last_call()["kwargs"]["image_path"] == {
        "type": "PIL.Image.Image",
        "mode": "RGB",
        "size": [96, 40],
        "pixel": [10, 20, 30],
    }


def test_text_to_video_gets_the_requested_size(wavespeed_fake_ovi: OviHarness):
    job = wavespeed_fake_ovi.job(model=T2V, width=992, height=512)
    wavespeed_fake_ovi.engine.render(job)
    kwargs = wavespeed_fake_ovi.last_call()["kwargs"]
    assert kwargs["image_path"] is None
    assert kwargs["video_frame_height_width"] == [512, 992]


def test_seed_minus_one_becomes_a_random_seed(wavespeed_fake_ovi: OviHarness):
    seeds = set()
    for _ in range(2):
        wavespeed_fake_ovi.engine.render(wavespeed_fake_ovi.job(seed=-1))
        seeds.add(wavespeed_fake_ovi.last_call()["kwargs"]["seed"])
    assert all(0 <= seed < 2**31 for seed in seeds)
    assert len(seeds) == 2


def test_clip_is_an_mp4_of_the_returned_arrays(wavespeed_fake_ovi: OviHarness):
    job = wavespeed_fake_ovi.job()
    result = wavespeed_fake_ovi.engine.render(job)
    assert isinstance(result, RenderResult)
    clip = probe(job.output_path)
    assert (clip.frames, clip.width, clip.height, clip.fps) == (121, 64, 48, 24.0)
    assert clip.seconds == pytest.approx(121 / 24, abs=0.05)
    assert clip.audio == "aac"
    assert clip.audio_seconds == pytest.approx(80_384 / 16_000, abs=0.1)
    # No stray temporary files beside it.
    assert (
        sorted(p.name for p in job.output_path.parent.iterdir() if "part" in p.name)
        == []
    )


def test_the_clips_pictures_are_the_returned_frames(wavespeed_fake_ovi: OviHarness):
    # The worker converts Ovi's float planes to I420 itself: the decoded clip must
    # show the arrays generate returned, channels in their order, levels in place.
    job = wavespeed_fake_ovi.job(seed=42)
    wavespeed_fake_ovi.engine.render(job)
    seed = wavespeed_fake_ovi.last_call()["kwargs"]["seed"]
    decoded = decode_frames(job.output_path, 3)
    assert len(decoded) == 3
    height, width = decoded[0].shape[:2]  # the size is another test's business
    video = fake_ovi_video(seed, height, width)
    for index, frame in enumerate(decoded):
        expected = next(iter(video_frames(video[:, index : index + 1])))
        error = np.abs(frame.astype(int) - expected.astype(int))
        # H.264 at ultrafast and 4:2:0 chroma: a few levels off, never a swap.
        assert error.mean() < 6, (index, error.mean(axis=(0, 1)))


def test_inference_time_is_the_measured_generate_time(wavespeed_fake_ovi: OviHarness):
    job = wavespeed_fake_ovi.job("[fake:sleep=0.4] slow")
    began = time.perf_counter()
    result = wavespeed_fake_ovi.engine.render(job)
    render_ms = (time.perf_counter() - began) * 1000
    # Bounds that hold however loaded the machine is: generate slept 0.4 s at
    # least, and it ran within the render.
    assert 400 <= result.inference_ms <= render_ms + 1


@pytest.mark.parametrize(
    ("tag", "code", "message"),
    [
        ("[fake:none]", 1403, "returned no clip: RuntimeError: fake Ovi: sampling"),
        ("[fake:oom]", 5003, "--ovi-cpu-offload (about 32 GB), with --ovi-fp8 or"),
        ("[fake:raise]", 1403, "raised: ValueError: fake Ovi: something broke"),
        ("[fake:bad-shape]", 1403, "expected a float array (3, frames, height, width)"),
    ],
)
def test_failures_end_the_task_and_keep_the_worker(
    wavespeed_fake_ovi: OviHarness, tag: str, code: int, message: str
):
    pid = wavespeed_fake_ovi.engine.worker_pid
    job = wavespeed_fake_ovi.job(f"{tag} fails")
    with pytest.raises(RenderFailed, match=re.escape(message)) as failed:
        wavespeed_fake_ovi.engine.render(job)
    assert failed.value.code == code
    assert not job.output_path.exists()
    # The same worker takes the next job.
    after = wavespeed_fake_ovi.job()
    wavespeed_fake_ovi.engine.render(after)
    assert after.output_path.exists()
    assert wavespeed_fake_ovi.engine.worker_pid == pid


def test_a_dead_worker_fails_its_task_and_is_restarted(wavespeed_fake_ovi: OviHarness):
    engine = wavespeed_fake_ovi.engine
    pid = engine.worker_pid
    with pytest.raises(RenderFailed, match="worker process died") as failed:
        engine.render(wavespeed_fake_ovi.job("[fake:die]"))
    assert failed.value.code == 5000
    job = wavespeed_fake_ovi.job()
    engine.render(job)
    assert job.output_path.exists()
    assert engine.worker_pid not in (pid, None)


@pytest.mark.parametrize("seen_dead", [True, False], ids=["gone", "dying"])
def test_a_worker_killed_while_idle_is_replaced(
    wavespeed_fake_ovi: OviHarness, seen_dead: bool
):
    engine = wavespeed_fake_ovi.engine
    pid = engine.worker_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    if seen_dead:
        wait_for(lambda: not engine._slots[0].worker.alive, "the killed worker to exit")
    # Else the job may reach the worker before it has died: it never took the job,
    # so the job goes to a new worker rather than failing.
    job = wavespeed_fake_ovi.job()
    engine.render(job)
    assert job.output_path.exists()
    assert engine.worker_pid not in (pid, None)


def test_concurrent_jobs_run_one_at_a_time_in_arrival_order(
    wavespeed_fake_ovi: OviHarness,
):
    fake = wavespeed_fake_ovi
    gate = fake.gate()
    prompts = [f"{gate.tag} job 0", "job 1", "job 2"]
    jobs: list[RenderJob] = []
    order: list[int] = []
    clips_at_start: dict[int, list[bool]] = {}
    first_started = threading.Event()

    def on_start(index: int) -> Callable[[], None]:
        def record() -> None:
            order.append(index)
            clips_at_start[index] = [job.output_path.exists() for job in jobs]
            first_started.set()

        return record

    jobs.extend(fake.job(p, on_start=on_start(i)) for i, p in enumerate(prompts))
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(fake.engine.render, jobs[0])]
        assert first_started.wait(WAIT_S)
        for index in (1, 2):  # arrive in order while job 0 holds the GPU
            futures.append(pool.submit(fake.engine.render, jobs[index]))
            wait_for(lambda n=index: fake.queued() == n, f"job {index} to queue")
        gate.open()
        for future in futures:
            future.result(timeout=WAIT_S)
    assert order == [0, 1, 2]
    # Each began only once the clip before it was written: never two at once.
    assert clips_at_start == {
        0: [False, False, False],
        1: [True, False, False],
        2: [True, True, False],
    }
    assert [c["kwargs"]["text_prompt"] for c in fake.calls()[-3:]] == prompts


def test_on_start_means_the_gpu_is_on_it(wavespeed_fake_ovi: OviHarness):
    fake = wavespeed_fake_ovi
    gate = fake.gate()
    events: list[str] = []
    started = threading.Event()

    def on_start() -> None:
        events.append("on_start")
        started.set()

    job = fake.job(f"{gate.tag} slow", on_start=on_start)
    calls_before = fake.call_count()

    def render() -> None:
        fake.engine.render(job)
        events.append("returned")

    with ThreadPoolExecutor(1) as pool:
        rendering = pool.submit(render)
        assert started.wait(WAIT_S)
        # Called while the render is still going, before any clip exists,
        assert not rendering.done()
        assert not job.output_path.exists()
        # with the worker on it (in generate) and the caller free meanwhile.
        wait_for(lambda: fake.call_count() > calls_before, "the stand-in's call")
        assert not rendering.done()
        gate.open()
        rendering.result(timeout=WAIT_S)
    assert events == ["on_start", "returned"]
    assert job.output_path.exists()


def test_a_failing_on_start_callback_does_not_fail_the_job(
    wavespeed_fake_ovi: OviHarness,
):
    def broken() -> None:
        raise RuntimeError("callback broke")

    job = wavespeed_fake_ovi.job(on_start=broken)
    wavespeed_fake_ovi.engine.render(job)
    assert job.output_path.exists()


def test_an_undecodable_image_fails_with_1402(wavespeed_fake_ovi: OviHarness):
    before = len(wavespeed_fake_ovi.calls())
    with pytest.raises(RenderFailed, match="cannot be used") as failed:
        wavespeed_fake_ovi.engine.render(wavespeed_fake_ovi.job(image=b"not an image"))
    assert failed.value.code == 1402
    assert len(wavespeed_fake_ovi.calls()) == before  # never reached the GPU


def test_close_fails_queued_jobs_and_stops_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    fake = start_fake_ovi(tmp_path, monkeypatch)
    pid = fake.engine.worker_pid
    started = threading.Event()
    # The gate is never opened: the first job holds the GPU until close() kills it.
    running = fake.job(f"{fake.gate().tag} long", on_start=started.set)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(fake.engine.render, running)]
        assert started.wait(WAIT_S)
        futures.append(pool.submit(fake.engine.render, fake.job()))
        wait_for(lambda: fake.queued() == 1, "the second job to queue")
        fake.engine.close()
        for future in futures:
            with pytest.raises(RenderFailed, match="closed") as failed:
                future.result(timeout=WAIT_S)
            assert failed.value.code == 5003
    assert fake.engine.worker_pid is None
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(RenderFailed, match="closed"):
        fake.engine.render(fake.job())


def test_the_worker_runs_in_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    checkout = tmp_path / "Ovi"
    checkout.mkdir()
    # A factory path relative to where the server was started, not to the checkout.
    monkeypatch.chdir(FAKE_OVI.parent)
    fake = start_fake_ovi(
        tmp_path,
        monkeypatch,
        checkout=checkout,
        factory="fake_ovi.py:FakeOviFusionEngine",
    )
    with fake.engine:
        fake.engine.render(fake.job())
    assert fake.last_call()["cwd"] == str(checkout.resolve())


def test_a_relative_output_path_is_the_servers_not_the_checkouts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # The worker changes into the checkout: a relative path must be made
    # absolute where the server runs, before it reaches the worker.
    checkout = tmp_path / "Ovi"
    checkout.mkdir()
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    fake = start_fake_ovi(tmp_path, monkeypatch, checkout=checkout)
    monkeypatch.chdir(server_dir)
    with fake.engine:
        job = replace(fake.job(), output_path=Path("data/outputs/clip.mp4"))
        fake.engine.render(job)
    assert (server_dir / "data" / "outputs" / "clip.mp4").exists()
    assert not (checkout / "data").exists()


def test_a_server_on_ovi_follows_the_engine_and_offers_its_options_as_flags():
    from wavespeed_mock.mock_server.cli.main import build_parser
    from wavespeed_mock.mock_server.core.profiles import parse_profile

    # Its default profile is one the server knows: tasks follow the engine.
    assert parse_profile(OviEngine.default_profile or "").name == "engine"
    argv = ["serve", "--engine", "ovi"]
    for option in OviEngine.options:
        flag = f"--ovi-{option.name}".replace("_", "-")
        argv += [flag] if option.type is bool else [flag, "1"]
    args = vars(build_parser().parse_args(argv))
    given = {
        k.rpartition(":")[2]
        for k, v in args.items()
        if k.startswith("engine_option:ovi:") and v is not None
    }
    assert given == {option.name for option in OviEngine.options}


def test_encoding_uses_some_cores_but_never_all(wavespeed_fake_ovi: OviHarness):
    # The synthetic engine pins one x264 thread for byte-stable files; the real
    # model's files are not byte-stable anyway, so its encode may use more, but
    # leaves cores to the worker and the server.
    cores = os.cpu_count() or 2
    threads = wavespeed_fake_ovi.engine.encode_threads
    assert 1 <= threads <= max(1, cores // 2)
