"""``OviEngine``: the server's engine interface, backed by Ovi in a worker process."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..mock_server.core.engine import (
    EngineOption,
    RenderFailed,
    RenderJob,
    RenderResult,
)
from ._options import OVI_OPTIONS, OviOptions
from ._process import NotTaken, WorkerProcess
from ._request import GenerationParams, OviCall, build_call
from ._setup import check_ovi_setup
from ._variants import VARIANTS, unknown_variant_message
from ._worker import REAL_FACTORY, Done, Failed, WorkerConfig
from .errors import OviSetupError, OviWorkerError

if TYPE_CHECKING:
    from ..mock_server.settings import Settings

__all__ = ["FACTORY_ENV", "OviEngine"]

log = logging.getLogger("wavespeed_mock.real_engine")

FACTORY_ENV = "WAVESPEED_MOCK_OVI_FACTORY"
"""Names a ``module:callable`` (or ``file.py:callable``) that builds the model in
the worker instead of Ovi's ``OviFusionEngine``: the hook for a stand-in."""


@dataclass
class _Ticket:
    call: OviCall
    on_start: Callable[[], None] | None
    future: Future[Done | Failed] = field(default_factory=Future)
    device: int | None = None
    """The GPU whose worker last took it."""


@dataclass
class _Slot:
    """One GPU: the worker holding a model on it, and the thread feeding it jobs."""

    device: int
    worker: WorkerProcess
    thread: threading.Thread | None = None
    broken: str | None = None
    """Why the last reload failed; None while the worker is usable."""
    retry_at: float = 0.0
    """``time.monotonic()`` from when a broken worker may be reloaded again."""
    loading: bool = True
    """Its first load has not ended yet (it takes no job until it has)."""


_POLL_S = 0.5
"""How often a waiting caller or an idle dispatcher looks up from its wait."""


class OviEngine:
    """Runs the real Ovi model behind the mock API, one clip at a time per GPU.

    The model is loaded once per GPU, in one worker process per device of
    ``options.device_list`` (``--ovi-devices 0,1``, else ``--ovi-device``), one
    device after the other: each load reads tens of GB into host memory. The
    constructor returns once the first device is ready (the server opens its
    port then); the others load behind it and take jobs as each is ready, and a
    device that cannot load is left out and retried after ``restart_backoff_s``. :meth:`render` may be called from several threads: jobs
    wait in one queue, first in first out, and each goes to the next idle
    worker; ``job.on_start`` is called when a GPU starts on it. The server builds
    it with :meth:`from_settings` from the ``--ovi-*`` flags (:class:`OviOptions`),
    and runs as many renders at once as there are workers (``max_concurrency``).

    Every wait is bounded: a load by ``load_timeout_s``, a render by
    ``render_timeout_s``, and a worker whose reload failed is not tried again for
    ``restart_backoff_s``; meanwhile its jobs go to the other workers, or, where
    there are none, fail at once with 5003.

    Args:
        options: the checkout, checkpoints, variant, devices, CPU offload, fp8
            and qint8.
        factory: builds the model inside the worker, called as
            ``factory(config=..., device=0)``; given as ``"module:callable"`` or
            ``"path/to/file.py:callable"``. Defaults to ``$WAVESPEED_MOCK_OVI_FACTORY``,
            then Ovi's real ``OviFusionEngine``. The start-up checks (packages,
            CUDA, checkout, checkpoints) run only for the real one.
        params: the sampling settings; the defaults are Ovi's recommended ones.
        encode_threads: x264 threads for the MP4. Defaults to half the cores, up
            to 4 (the other half converts frames and serves requests; on 2 cores
            one thread measured faster than two), and never fewer than the
            server's ``render_threads`` when built by :meth:`from_settings`. The
            synthetic engine pins one thread so its files are byte-stable, but a
            real model's clips differ run to run anyway, and the encode is most of
            the time this engine adds.
        load_timeout_s: how long to wait for a worker to load the model.
        render_timeout_s: how long one clip may take once a worker has it (the
            worker is then killed, the task fails with 5004, and it is reloaded).
        restart_backoff_s: how long a worker whose reload failed rests before the
            next try.

    Raises:
        OviSetupError: listing everything missing (packages, GPU, checkout, weights).
        OviWorkerError: no device could load the model (each one's reason).

    Example:
        >>> engine = OviEngine(OviOptions(checkout=Path("~/Ovi"), devices="0,1"))
        ... # doctest: +SKIP
    """

    name: ClassVar[str] = "ovi"
    max_concurrency: int = 1
    """One per worker: set from the devices when the engine is built."""
    reports_progress: ClassVar[bool] = True
    requires_gpu: ClassVar[bool] = True
    options: ClassVar[tuple[EngineOption, ...]] = OVI_OPTIONS
    default_profile: ClassVar[str | None] = "engine"
    # about 96 s a clip with flash-attn 2; 12 min for 960x960 10 s (Ovi#84)
    default_sync_wait_s: ClassVar[float | None] = 900.0
    """A real model implies real progress: ``processing`` means the GPU is on it."""

    def __init__(
        self,
        options: OviOptions | None = None,
        *,
        factory: str | None = None,
        params: GenerationParams | None = None,
        encode_threads: int | None = None,
        load_timeout_s: float = 1800.0,
        render_timeout_s: float = 3600.0,
        restart_backoff_s: float = 60.0,
    ) -> None:
        options = options or OviOptions()
        self.params = params or GenerationParams()
        self.encode_threads = encode_threads or default_encode_threads()
        self.restart_backoff_s = restart_backoff_s
        self.factory = _absolute(factory or os.environ.get(FACTORY_ENV) or REAL_FACTORY)
        # Resolved here: the worker runs in the checkout, so relative paths move.
        checkout = _expand(options.checkout)
        checkpoints = _expand(options.checkpoints)
        self.ovi_options = replace(options, checkout=checkout, checkpoints=checkpoints)
        try:
            devices = options.device_list
        except ValueError as exc:
            raise OviSetupError([str(exc)]) from None
        if self.factory == REAL_FACTORY:
            check_ovi_setup(
                checkout=checkout,
                checkpoints=checkpoints,
                variant=options.variant,
                devices=devices,
                fp8=options.fp8,
                qint8=options.qint8,
            )
        elif options.variant not in VARIANTS:
            raise OviSetupError([unknown_variant_message(options.variant)])
        self.variant = VARIANTS[options.variant]
        self.devices = devices
        self.max_concurrency = len(devices)
        self.clip_duration_s: float = self.variant.duration_s
        """How long this engine's clips are: the server declares it (``/_mock/state``)."""
        self._queue: queue.SimpleQueue[_Ticket | None] = queue.SimpleQueue()
        self._closed = threading.Event()
        # Reloads take turns, as start-up loads do: after a host out-of-memory
        # kill every worker is dead, and loading them all at once (about 35 GB
        # of host memory each with CPU offload) would bring the killer back.
        self._reloading = threading.Lock()
        # Held while a job is queued and while close() queues its stop markers,
        # so no job can land behind them, where no dispatcher looks.
        self._accepting = threading.Lock()
        self._slots = [
            _Slot(
                device,
                WorkerProcess(
                    WorkerConfig(
                        factory=self.factory,
                        checkout=None if checkout is None else str(checkout),
                        gpu=device,
                        engine_config=_ovi_config(self.ovi_options),
                    ),
                    load_timeout_s=load_timeout_s,
                    render_timeout_s=render_timeout_s,
                ),
            )
            for device in devices
        ]
        # One load at a time: a load reads tens of GB into host memory, and
        # loading all at once is how hosts run out of it (Ovi#65, #29). The
        # engine is ready with its first GPU (the server opens its port then);
        # the others load behind it, and a GPU that cannot load is left out
        # (and retried after ``restart_backoff_s``) instead of stopping the rest.
        try:
            first = self._load_first()
        except BaseException:
            for slot in self._slots:
                slot.worker.close()
                slot.worker.stop()
            raise
        for slot in self._slots:
            slot.thread = threading.Thread(
                target=self._serve,
                args=(slot,),
                name=f"wavespeed-ovi-dispatch-{slot.device}",
                daemon=True,
            )
            slot.thread.start()
        later = [s for s in self._slots if s.loading]
        self._loader: threading.Thread | None = None
        if later:
            log.info(
                "Ovi is ready on GPU %s; loading GPU %s behind it, one at a time",
                first.device,
                ", ".join(str(s.device) for s in later),
            )
            self._loader = threading.Thread(
                target=self._load_rest,
                args=(later,),
                name="wavespeed-ovi-loader",
                daemon=True,
            )
            self._loader.start()

    @classmethod
    def from_settings(cls, settings: Settings, options: Mapping[str, Any]) -> OviEngine:
        """The engine the server runs: ``options`` are the ``--ovi-*`` values.

        Example:
            >>> OviEngine.from_settings(Settings(), {"checkout": Path("~/Ovi")})
            ... # doctest: +SKIP
        """
        return cls(
            OviOptions.from_mapping(options),
            encode_threads=max(settings.render_threads, default_encode_threads()),
        )

    def _load_first(self) -> _Slot:
        """Load the devices in order until one is ready; the others wait.

        Raises:
            OviWorkerError: no device could load the model (each one's reason).
        """
        problems: list[str] = []
        for slot in self._slots:
            try:
                slot.worker.start()
            except OviWorkerError as exc:
                if len(self._slots) == 1:
                    raise
                problems.append(f"GPU {slot.device}: {exc}")
                self._left_out(slot, str(exc))
                continue
            slot.loading = False
            return slot
        raise OviWorkerError(
            "No GPU could load the Ovi model:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )

    def _load_rest(self, slots: list[_Slot]) -> None:
        """The background loads: one device after the other, taking turns with
        reloads; a device that fails is left out until its next try."""
        for slot in slots:
            try:
                with self._reloading:
                    if self._closed.is_set():
                        return
                    slot.worker.start()
            except Exception as exc:  # never fatal: the other GPUs serve
                self._left_out(slot, str(exc))
            finally:
                slot.loading = False

    def _left_out(self, slot: _Slot, problem: str) -> None:
        slot.broken = problem
        slot.retry_at = time.monotonic() + self.restart_backoff_s
        slot.loading = False
        log.error(
            "the Ovi worker on GPU %s could not load the model, so the other GPUs "
            "serve without it (the next try is in %.0f s): %s",
            slot.device,
            self.restart_backoff_s,
            problem,
        )

    @property
    def device_names(self) -> tuple[str, ...]:
        """Its devices as its results name them (``RenderResult.device``)."""
        return tuple(f"cuda:{d}" for d in self.devices)

    @property
    def ready_devices(self) -> tuple[int, ...]:
        """The devices whose worker has the model loaded now."""
        return tuple(
            s.device
            for s in self._slots
            if not s.loading and s.broken is None and s.worker.alive
        )

    @property
    def worker_pid(self) -> int | None:
        """The first worker's process id (it changes when a dead worker is restarted)."""
        return self._slots[0].worker.pid

    @property
    def worker_pids(self) -> tuple[int | None, ...]:
        """Each worker's process id, in the order of ``devices``."""
        return tuple(slot.worker.pid for slot in self._slots)

    def render(self, job: RenderJob) -> RenderResult:
        """Render ``job`` on the next idle GPU, after the jobs that came before it.

        Raises:
            RenderFailed: with the API task error code: 1400/1401/1402 for a job the
                engine cannot take, 1403 when Ovi fails, 5003 when the GPU ran out
                of memory, the worker cannot be reloaded or the engine is closed,
                5004 when the clip took longer than ``render_timeout_s``, 5000
                when the worker died.
        """
        if self._closed.is_set():
            raise RenderFailed("the Ovi engine is closed", code=5003)
        call = build_call(
            job,
            params=self.params,
            variant=self.variant,
            threads=self.encode_threads,
        )
        ticket = _Ticket(call, job.on_start)
        with self._accepting:
            if self._closed.is_set():
                raise RenderFailed("the Ovi engine is closed", code=5003)
            self._queue.put(ticket)
        outcome = self._wait(ticket)
        if isinstance(outcome, Failed):
            raise RenderFailed(outcome.message, code=outcome.code)
        log.info(
            "%s: generated in %.1f s, written in %.2f s",
            job.prediction_id,
            outcome.inference_ms / 1000,
            outcome.write_ms / 1000,
        )
        return RenderResult(
            inference_ms=outcome.inference_ms,
            device=None
            if ticket.device is None
            else f"cuda:{ticket.device}",  # as device_names
        )

    def close(self) -> None:
        """Stop the workers (freeing the GPUs) and fail the jobs still queued."""
        with self._accepting:
            if self._closed.is_set():
                return
            self._closed.set()
            for _ in self._slots:
                self._queue.put(None)
        for slot in self._slots:
            # A clip in progress is abandoned (it would take minutes), and so is
            # a reload: close() also ends a load under way.
            slot.worker.close()
        if self._loader is not None:
            self._loader.join(timeout=60)
        for slot in self._slots:
            if slot.thread is not None:
                slot.thread.join(timeout=60)
            slot.worker.stop()

    def __enter__(self) -> OviEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _wait(self, ticket: _Ticket) -> Done | Failed:
        # Never a wait without an end: a dispatcher bounds each step it takes, and
        # should every dispatcher be gone, the job fails instead of waiting.
        while True:
            try:
                return ticket.future.result(timeout=_POLL_S)
            except FutureTimeout:
                pass
            if not any(
                s.thread is not None and s.thread.is_alive() for s in self._slots
            ):
                if ticket.future.done():
                    return ticket.future.result()
                return Failed(
                    ticket.call.prediction_id,
                    "the Ovi engine stopped handing out jobs; see the server log",
                    5000 if not self._closed.is_set() else 5003,
                )

    def _serve(self, slot: _Slot) -> None:
        """One worker's dispatcher: takes the oldest job whenever the worker is idle."""
        while True:
            try:
                if slot.loading and not self._closed.is_set():
                    self._closed.wait(_POLL_S)  # its first load is under way
                    continue
                if (
                    slot.broken is not None
                    and not self._closed.is_set()
                    and self._another_is_usable(slot)
                ):
                    # Leave the jobs to the others; reload once the rest is over.
                    rest = slot.retry_at - time.monotonic()
                    if rest <= 0:
                        self._revive(slot)
                    else:
                        self._closed.wait(min(_POLL_S, rest))
                    continue
                try:
                    ticket = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if ticket is None:
                    return  # the stop marker: close() queues one per dispatcher
                ticket.future.set_result(self._outcome(slot, ticket))
                if not self._closed.is_set() and not slot.worker.alive:
                    log.warning(
                        "the Ovi worker on GPU %s died; restarting it", slot.device
                    )
                    self._revive(slot)
            except Exception:  # the dispatcher must survive anything
                log.exception("the Ovi dispatcher of GPU %s hit an error", slot.device)

    def _another_is_usable(self, slot: _Slot) -> bool:
        return any(
            other.broken is None and not other.loading
            for other in self._slots
            if other is not slot
        )

    def _outcome(self, slot: _Slot, ticket: _Ticket) -> Done | Failed:
        call = ticket.call
        try:
            return self._run(slot, ticket)
        except Exception as exc:  # a job always ends, whatever went wrong
            log.exception("Ovi dispatch of %s failed", call.prediction_id)
            return Failed(call.prediction_id, f"internal error: {exc!r}", 5000)

    def _run(self, slot: _Slot, ticket: _Ticket) -> Done | Failed:
        call = ticket.call
        if self._closed.is_set():
            return _closed(call)
        if not slot.worker.alive:
            problem = self._revive(slot)
            if problem is not None:
                return _unavailable(call, slot, problem)
        ticket.device = slot.device
        outcome = slot.worker.run(call, ticket.on_start)
        if isinstance(outcome, NotTaken) and not self._closed.is_set():
            # The worker died between jobs (killed, the OOM killer) and this job
            # never reached it: a new worker gets it, once.
            log.warning(
                "the Ovi worker on GPU %s was gone before %s; restarting it",
                slot.device,
                call.prediction_id,
            )
            problem = self._revive(slot)
            if problem is not None:
                return _unavailable(call, slot, problem)
            outcome = slot.worker.run(call, ticket.on_start)
        if isinstance(outcome, NotTaken):
            outcome = outcome.failure
        if self._closed.is_set() and isinstance(outcome, Failed):
            return _closed(call)
        return outcome

    def _revive(self, slot: _Slot) -> str | None:
        """Reload ``slot``'s worker; why it is unusable, or None once it is up."""
        if self._closed.is_set():
            return "the engine is closing"
        if slot.broken is not None and time.monotonic() < slot.retry_at:
            left = slot.retry_at - time.monotonic()
            return f"{slot.broken} (the next reload is in {left:.0f} s)"
        try:
            with self._reloading:
                if self._closed.is_set():
                    return "the engine is closing"
                slot.worker.restart()
        except Exception as exc:  # OviWorkerError or anything else: never fatal here
            slot.broken = str(exc) if isinstance(exc, OviWorkerError) else repr(exc)
            slot.retry_at = time.monotonic() + self.restart_backoff_s
            log.error(
                "reloading the Ovi worker on GPU %s failed: %s",
                slot.device,
                slot.broken,
            )
            return slot.broken
        slot.broken = None
        return None


def _unavailable(call: OviCall, slot: _Slot, problem: str) -> Failed:
    return Failed(
        call.prediction_id,
        f"the Ovi worker on GPU {slot.device} is unavailable: {problem}",
        5003,
    )


def _closed(call: OviCall) -> Failed:
    return Failed(
        call.prediction_id, "the Ovi engine was closed before the clip was done", 5003
    )


def _absolute(factory: str) -> str:
    # The worker runs in the Ovi checkout: a file path must not depend on that.
    target, sep, attr = factory.rpartition(":")
    if sep and target.endswith(".py"):
        return f"{Path(target).expanduser().resolve()}:{attr}"
    return factory


def _expand(path: Path | None) -> Path | None:
    return None if path is None else Path(path).expanduser().resolve()


def default_encode_threads() -> int:
    """Half the cores, at least 1 and at most 4 (see ``OviEngine``'s ``encode_threads``)."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def _ovi_config(options: OviOptions) -> dict[str, Any]:
    """The keys Ovi's ``OviFusionEngine`` reads from its config, every one set."""
    checkpoints = options.checkpoint_dir
    return {
        "ckpt_dir": str(checkpoints) if checkpoints is not None else "./ckpts",
        # Explicit: Ovi's shipped YAML says 960x960_10s, its code 960x960_5s.
        "model_name": options.variant,
        # i2v or t2v follows from each call's image; t2i2v would pull FLUX.
        "mode": "i2v",
        "cpu_offload": options.cpu_offload,
        "fp8": options.fp8,
        # Ovi quantizes the loaded bf16 fusion model with optimum-quanto.
        "qint8": options.qint8,
        "shard_text_model": False,
    }
