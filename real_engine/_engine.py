"""``OviEngine``: the server's engine interface, backed by Ovi in a worker process."""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
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


class OviEngine:
    """Runs the real Ovi model behind the mock API, one clip at a time per GPU.

    The model is loaded once, at construction, in a worker process on
    ``options.device``. :meth:`render` may be called from several threads: calls
    are served strictly in the order they arrive, and ``job.on_start`` is called
    when the GPU starts on a job. The server builds it with :meth:`from_settings`
    from the ``--ovi-*`` flags (:class:`OviOptions`).

    Args:
        options: the checkout, checkpoints, variant, device, CPU offload and fp8.
        factory: builds the model inside the worker, called as
            ``factory(config=..., device=0)``; given as ``"module:callable"`` or
            ``"path/to/file.py:callable"``. Defaults to ``$WAVESPEED_MOCK_OVI_FACTORY``,
            then Ovi's real ``OviFusionEngine``. The start-up checks (torch, CUDA,
            checkout, checkpoints) run only for the real one.
        params: the sampling settings; the defaults are Ovi's recommended ones.
        encode_threads: x264 threads for the MP4. Defaults to half the cores, up
            to 4 (the other half converts frames and serves requests; on 2 cores
            one thread measured faster than two), and never fewer than the
            server's ``render_threads`` when built by :meth:`from_settings`. The
            synthetic engine pins one thread so its files are byte-stable, but a
            real model's clips differ run to run anyway, and the encode is most of
            the time this engine adds.
        load_timeout_s: how long to wait for the model to load.

    Raises:
        OviSetupError: listing everything missing (packages, GPU, checkout, weights).
        OviWorkerError: the worker could not load the model.

    Example:
        >>> engine = OviEngine(OviOptions(checkout=Path("~/Ovi")))
        ... # doctest: +SKIP
    """

    name: ClassVar[str] = "ovi"
    max_concurrency: ClassVar[int] = 1
    reports_progress: ClassVar[bool] = True
    requires_gpu: ClassVar[bool] = True
    options: ClassVar[tuple[EngineOption, ...]] = OVI_OPTIONS
    default_profile: ClassVar[str | None] = "engine"
    """A real model implies real progress: ``processing`` means the GPU is on it."""

    def __init__(
        self,
        options: OviOptions | None = None,
        *,
        factory: str | None = None,
        params: GenerationParams | None = None,
        encode_threads: int | None = None,
        load_timeout_s: float = 1800.0,
    ) -> None:
        options = options or OviOptions()
        self.params = params or GenerationParams()
        self.encode_threads = encode_threads or default_encode_threads()
        self.factory = _absolute(factory or os.environ.get(FACTORY_ENV) or REAL_FACTORY)
        # Resolved here: the worker runs in the checkout, so relative paths move.
        checkout = _expand(options.checkout)
        checkpoints = _expand(options.checkpoints)
        self.ovi_options = replace(options, checkout=checkout, checkpoints=checkpoints)
        if self.factory == REAL_FACTORY:
            check_ovi_setup(
                checkout=checkout,
                checkpoints=checkpoints,
                variant=options.variant,
                device=options.device,
                fp8=options.fp8,
            )
        elif options.variant not in VARIANTS:
            raise OviSetupError([unknown_variant_message(options.variant)])
        self.variant = VARIANTS[options.variant]
        self._worker = WorkerProcess(
            WorkerConfig(
                factory=self.factory,
                checkout=None if checkout is None else str(checkout),
                gpu=options.device,
                engine_config=_ovi_config(self.ovi_options),
            ),
            load_timeout_s=load_timeout_s,
        )
        self._worker.start()
        self._queue: queue.SimpleQueue[_Ticket | None] = queue.SimpleQueue()
        self._closed = threading.Event()
        # Held while a job is queued and while close() queues its stop marker, so
        # no job can land behind the marker, where the dispatcher never looks.
        self._accepting = threading.Lock()
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="wavespeed-ovi-dispatch", daemon=True
        )
        self._dispatcher.start()

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

    @property
    def worker_pid(self) -> int | None:
        """The worker's process id (it changes when a dead worker is restarted)."""
        return self._worker.pid

    def render(self, job: RenderJob) -> RenderResult:
        """Render ``job`` on the GPU, after the jobs that came before it.

        Raises:
            RenderFailed: with the API task error code: 1400/1401/1402 for a job the
                engine cannot take, 1403 when Ovi fails, 5003 when the GPU ran out
                of memory or the engine is closed, 5000 when the worker died.
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
        outcome = ticket.future.result()
        if isinstance(outcome, Failed):
            raise RenderFailed(outcome.message, code=outcome.code)
        log.info(
            "%s: generated in %.1f s, written in %.2f s",
            job.prediction_id,
            outcome.inference_ms / 1000,
            outcome.write_ms / 1000,
        )
        return RenderResult(inference_ms=outcome.inference_ms)

    def close(self) -> None:
        """Stop the worker (freeing the GPU) and fail the jobs still queued."""
        with self._accepting:
            if self._closed.is_set():
                return
            self._closed.set()
            self._queue.put(None)
        self._worker.kill()  # a clip in progress is abandoned: it would take minutes
        self._dispatcher.join()
        self._worker.stop()

    def __enter__(self) -> OviEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _dispatch(self) -> None:
        while True:
            ticket = self._queue.get()
            if ticket is None:
                break
            if self._closed.is_set():
                ticket.future.set_result(_closed(ticket.call))
                continue
            ticket.future.set_result(self._run(ticket))
            if not self._worker.alive and not self._closed.is_set():
                self._restart()
        # Nothing follows the stop marker: render() queues under the lock close()
        # takes to queue the marker, and finds the engine closed after it.

    def _run(self, ticket: _Ticket) -> Done | Failed:
        call = ticket.call
        try:
            outcome = self._worker.run(call, ticket.on_start)
            if isinstance(outcome, NotTaken) and not self._closed.is_set():
                # The worker died between jobs (killed, the OOM killer) and this
                # job never reached it: a new worker gets it, once.
                log.warning(
                    "the Ovi worker was gone before %s; restarting it",
                    call.prediction_id,
                )
                self._worker.restart()
                outcome = self._worker.run(call, ticket.on_start)
        except OviWorkerError as exc:
            return Failed(
                call.prediction_id, f"the Ovi worker is unavailable: {exc}", 5003
            )
        except Exception as exc:  # the dispatcher must survive anything
            log.exception("Ovi dispatch of %s failed", call.prediction_id)
            return Failed(call.prediction_id, f"internal error: {exc!r}", 5000)
        if isinstance(outcome, NotTaken):
            outcome = outcome.failure
        if self._closed.is_set() and isinstance(outcome, Failed):
            return _closed(call)
        return outcome

    def _restart(self) -> None:
        log.warning("the Ovi worker died; restarting it")
        try:
            self._worker.restart()
        except OviWorkerError:
            # The next job tries again and fails with the reason.
            log.exception("restarting the Ovi worker failed")


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
        "qint8": False,
        "shard_text_model": False,
    }
