"""The worker process: holds one Ovi model on one GPU and renders calls in turn.

Runs in a ``spawn``-ed child (never a fork of the threaded server) with the Ovi
checkout as working directory, because Ovi reads its config files relative to it.
It writes the MP4 itself: the decoded video (720 MB of float32 for 121x704x704)
never crosses the process boundary, only a few hundred bytes of result do.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ._frames import check_clip, video_i420_frames
from ._request import OviCall
from ._variants import OVI_SAMPLE_RATE

__all__ = [
    "Done",
    "Failed",
    "LoadFailed",
    "OviLike",
    "Ready",
    "Started",
    "WorkerConfig",
    "build_ovi_engine",
    "load_factory",
    "worker_main",
]

REAL_FACTORY = "wavespeed_mock.real_engine._worker:build_ovi_engine"


class OviLike(Protocol):
    """The seam: what the engine needs of Ovi's ``OviFusionEngine``.

    Returns ``(video, audio, image)``: video float32 (3, F, H, W) in [-1, 1], audio
    float32 (N,) at 16 kHz; or None when the generation failed (Ovi logs why).
    """

    def generate(
        self,
        text_prompt: str,
        image_path: Any = None,
        video_frame_height_width: list[int] | None = None,
        seed: int = 100,
        solver_name: str = "unipc",
        sample_steps: int = 50,
        shift: float = 5.0,
        video_guidance_scale: float = 5.0,
        audio_guidance_scale: float = 4.0,
        slg_layer: int = 9,
        video_negative_prompt: str = "",
        audio_negative_prompt: str = "",
    ) -> tuple[Any, ...] | None: ...


@dataclass(frozen=True)
class WorkerConfig:
    factory: str
    """``module:callable`` or ``path/to/file.py:callable``, called in the worker as
    ``factory(config=engine_config, device=0)`` to build the :class:`OviLike`."""
    checkout: str | None
    """Working directory and first ``sys.path`` entry of the worker."""
    gpu: int | None
    """Pins ``CUDA_VISIBLE_DEVICES`` to this GPU; None leaves it alone."""
    engine_config: dict[str, Any] = field(default_factory=dict)


# Messages from the worker. The parent sends an OviCall per job, or None to stop.
@dataclass(frozen=True)
class Ready:
    pid: int
    load_s: float


@dataclass(frozen=True)
class LoadFailed:
    message: str


@dataclass(frozen=True)
class Started:
    prediction_id: str


log = logging.getLogger("wavespeed_mock.ovi_worker")


@dataclass(frozen=True)
class Done:
    prediction_id: str
    inference_ms: int
    write_ms: int
    shape: tuple[int, int, int]
    """(frames, height, width) of the clip written."""
    audio_samples: int


@dataclass(frozen=True)
class Failed:
    prediction_id: str
    message: str
    code: int
    fatal: bool = False
    """The worker cannot go on (an unrecoverable CUDA error): it exits after
    this answer, and the engine starts a new one for the next job."""


_FATAL_CUDA = (
    "illegal memory access",
    "device-side assert",
    "unspecified launch failure",
    "cuda error: misaligned address",
    "cublas_status_execution_failed",
    "cudnn_status_execution_failed",
    "an illegal instruction",
)
"""CUDA errors after which the device's context is broken for this process:
every later kernel fails too, so the worker is replaced, not kept."""


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    """The worker's life: load the model once, then render calls until told to stop."""
    # Ctrl-C reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    # What the worker and Ovi log goes to stderr, which is the server's.
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s ovi-worker[{os.getpid()} gpu {config.gpu}] "
        "%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if config.gpu is not None:
        _pin_gpu(config.gpu)
    if config.checkout is not None:
        os.chdir(config.checkout)
        sys.path.insert(0, config.checkout)
    started = time.perf_counter()
    try:
        factory = load_factory(config.factory)
        model = factory(config=dict(config.engine_config), device=0)
    except BaseException as exc:  # anything at all: report it, then exit
        conn.send(LoadFailed(_summary(exc, "loading the model failed")))
        return
    conn.send(Ready(os.getpid(), time.perf_counter() - started))
    while True:
        try:
            call = conn.recv()
        except (EOFError, OSError):  # the parent went away
            return
        if call is None:
            return
        outcome = run_call(model, call, conn)
        conn.send(outcome)
        if isinstance(outcome, Failed) and outcome.fatal:
            log.error("exiting after an unrecoverable CUDA error; a new worker follows")
            return


PARENT_CHECK_S = 0.5
"""How often a worker looks whether the server that started it is still there."""


def _exit_with_parent() -> None:
    """End this worker as soon as the server that started it is gone.

    A server killed with ``kill -9`` cannot stop its workers; one left running
    would finish its clip holding up to ~80 GB of GPU memory, and the restarted
    server's own worker would run out of memory beside it. A watcher thread (not
    ``PR_SET_PDEATHSIG``, which fires when the *thread* that started the worker
    ends) sees the worker re-parented and exits at once, mid-clip included.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent:
                os._exit(70)  # no cleanup: the clip was for a server that is gone

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_call(model: OviLike, call: OviCall, conn: Connection) -> Done | Failed:
    """Generate ``call``, write its MP4, and say how it went; never raises."""
    from PIL import Image

    image = None if call.image is None else Image.fromarray(call.image, "RGB")
    kwargs = call.generate_kwargs(image)
    conn.send(Started(call.prediction_id))
    failure = detail = trace = ""
    with _capture_errors() as logged:
        began = time.perf_counter()
        try:
            result = model.generate(**kwargs)
        except Exception as exc:  # Ovi catches its own; a stand-in may not
            result, failure = None, "Ovi's generate raised"
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            trace = traceback.format_exc()
        inference_ms = round((time.perf_counter() - began) * 1000)
    if not failure and _is_empty(result):
        failure = "Ovi's generate returned no clip"
        detail = _last_line(logged) or "no error was logged; see the server log"
    if failure:
        # The whole story to the server's log (the worker's stderr is the
        # server's); the task's message keeps the last line.
        log.error(
            "clip %s failed: %s\n%s",
            call.prediction_id,
            failure,
            "\n".join(logged) or trace or detail,
        )
        _free_gpu_memory()
        if any(mark in "\n".join([detail, *logged]).lower() for mark in _FATAL_CUDA):
            return Failed(
                call.prediction_id,
                f"{failure}: {detail}. The GPU's CUDA context cannot be used "
                "after this error: the worker is replaced before the next clip",
                5000,
                fatal=True,
            )
        if "out of memory" in detail.lower() or "OutOfMemoryError" in detail:
            return Failed(
                call.prediction_id,
                f"the GPU ran out of memory generating the clip: {detail}. Try "
                "--ovi-cpu-offload (about 32 GB), with --ovi-fp8 or --ovi-qint8 "
                "as well for about 24 GB (Ovi's README; either alone stays near "
                "80 GB), or a GPU with more free memory",
                5003,
            )
        return Failed(call.prediction_id, f"{failure}: {detail}", 1403)
    if not isinstance(result, tuple) or len(result) < 2:
        got = f"a {type(result).__name__}"
        return Failed(
            call.prediction_id,
            f"Ovi's generate returned {got}; expected (video, audio, image)",
            1403,
        )
    video, audio = result[0], result[1]
    problem = check_clip(video, audio)
    if problem is not None:
        return Failed(call.prediction_id, f"Ovi's generate returned {problem}", 1403)
    began = time.perf_counter()
    try:
        _write(call, video, audio)
    except Exception as exc:
        return Failed(call.prediction_id, _summary(exc, "writing the MP4 failed"), 5000)
    write_ms = round((time.perf_counter() - began) * 1000)
    _, frames, height, width = video.shape
    return Done(
        call.prediction_id, inference_ms, write_ms, (frames, height, width), audio.size
    )


def _is_empty(result: object) -> bool:
    # Upstream returns None on failure; some forks return (None, None, None).
    return result is None or (
        isinstance(result, tuple) and all(part is None for part in result)
    )


def _write(call: OviCall, video: np.ndarray, audio: np.ndarray) -> None:
    # The server's writer: the same encoder settings as the synthetic engine, and
    # atomic (a temporary file renamed), so no reader ever sees half a clip.
    from ..mock_server.media.writer import write_clip

    final = Path(call.output_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    write_clip(
        video_i420_frames(video),
        np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0),
        OVI_SAMPLE_RATE,
        final,
        fps=call.fps,
        threads=call.threads,
        pixel_format="yuv420p",
    )


def load_factory(spec: str) -> Any:
    """The callable named by ``module:attr`` or ``path/to/file.py:attr``."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(f"factory {spec!r} is not of the form 'module:callable'")
    if target.endswith(".py"):
        path = Path(target).resolve()
        module_spec = importlib.util.spec_from_file_location(
            f"_wavespeed_ovi_factory_{path.stem}", path
        )
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load a module from {str(path)!r}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    return getattr(module, attr)


def build_ovi_engine(*, config: dict[str, Any], device: int = 0) -> OviLike:
    """Ovi's real ``OviFusionEngine``, from the checkout (the working directory)."""
    torch = importlib.import_module("torch")
    if not torch.cuda.is_available():
        raise RuntimeError(
            "no CUDA device is visible to the worker "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})"
        )
    omegaconf = importlib.import_module("omegaconf")
    # Imported by path relative to the working directory: Ovi is not a package.
    fusion = importlib.import_module("ovi.ovi_fusion_engine")
    engine: OviLike = fusion.OviFusionEngine(
        config=omegaconf.OmegaConf.create(config),
        device=device,
        target_dtype=torch.bfloat16,
    )
    return engine


def _pin_gpu(gpu: int) -> None:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        # The user already narrowed the devices: --ovi-device indexes their list.
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        os.environ["CUDA_VISIBLE_DEVICES"] = ids[gpu] if gpu < len(ids) else str(gpu)
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)


def _free_gpu_memory() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            torch.cuda.empty_cache()


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            self.messages.append(text)


@contextlib.contextmanager
def _capture_errors() -> Iterator[list[str]]:
    """Collect what is logged at ERROR meanwhile: Ovi logs the traceback it swallows."""
    handler = _ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.messages
    finally:
        root.removeHandler(handler)


def _last_line(messages: list[str]) -> str:
    for message in reversed(messages):
        lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return ""


def _summary(exc: BaseException, what: str) -> str:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return f"{what}: {last}"
