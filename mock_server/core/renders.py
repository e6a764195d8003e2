"""Renders: the jobs an engine works on, off the request path.

A :class:`RenderQueue` builds each prediction's :class:`RenderJob`, asks a
:class:`CachedRenderer` engine for a finished clip first, runs the rest on a
thread pool sized by the engine's ``max_concurrency``, records each outcome in
the store, and lets the event loop wait for an outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .clock import ServerClock
from .engine import (
    INTERNAL_ERROR,
    CachedRenderer,
    Engine,
    RenderFailed,
    RenderJob,
    RenderResult,
)
from .images import ImageIntake, ImageLoader, first_image
from .objects import LocalFiles, ObjectStore, ObjectStoreError
from .prediction import Prediction
from .store import Store

__all__ = ["INTERNAL_ERROR", "RenderQueue"]

MAX_TEXT_CHARS = 10_000
"""The text an output derives from is cut here (the synthetic renderer's bound)."""

log = logging.getLogger("wavespeed_mock.server")


RENDER_NICENESS = 10
"""How much lower than the server's the render threads' CPU priority is."""


def _yield_to_requests() -> None:
    """Lower the calling render thread's CPU priority (Linux: niceness is per thread).

    A poll must never wait for a render (issue 12): when renders and the event
    loop want the same core, the loop should win. The engine's children (ffmpeg)
    inherit the lower priority. Elsewhere this is a no-op.
    """
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + RENDER_NICENESS
        )


class RenderQueue:
    """Runs renders for the service and records what they produced."""

    def __init__(
        self,
        *,
        engine: Engine,
        store: Store,
        clock: ServerClock,
        images: ImageLoader,
        outputs_dir: Path,
        objects: ObjectStore | None = None,
        engine_models: Mapping[str, str] | None = None,
        fallback: Engine | None = None,
    ) -> None:
        self.engine = engine
        self.objects: ObjectStore = objects if objects is not None else LocalFiles()
        """Where a render's files are also kept, before its outcome is stored."""
        self.engine_models = dict(engine_models or {})
        """Model ids to the family a real engine may run (catalogue data)."""
        self.fallback = fallback
        """The engine for the models ``engine`` does not run (the synthetic one,
        beside a real engine); None: ``engine`` runs every model."""
        self.store = store
        self.clock = clock
        self.images = images
        self.outputs_dir = outputs_dir
        self._cached = engine if isinstance(engine, CachedRenderer) else None
        self._fallback_cached = (
            fallback if isinstance(fallback, CachedRenderer) else None
        )
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, int(engine.max_concurrency)),
            thread_name_prefix="wavespeed-render",
            initializer=_yield_to_requests,
        )
        self._futures: dict[str, Future[None]] = {}
        self._materializing: dict[str, asyncio.Future[None]] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def __len__(self) -> int:
        """Renders queued or running."""
        return len(self._futures)

    def pending_ids(self) -> list[str]:
        """The predictions whose render is queued or running."""
        return list(self._futures)

    def forget(self, prediction_id: str) -> None:
        """``prediction_id`` was pruned: drop its render if it has not started, and
        wake whoever waits for it (a render under way discards its file)."""
        future = self._futures.pop(prediction_id, None)
        if future is not None:
            future.cancel()
        with self._lock:
            event = self._done.pop(prediction_id, None)
        if event is not None:
            event.set()

    def cancel_all(self) -> None:
        for future in list(self._futures.values()):
            future.cancel()

    def close(self) -> None:
        """Stop: renders cut short stay without an outcome, re-run at the next start."""
        self._closing = True
        self.cancel_all()
        self.engine.close()
        if self.fallback is not None:
            self.fallback.close()
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def wait(self, p: Prediction, timeout_s: float) -> bool:
        """Wait (in real time) until the render of ``p`` finished or failed."""
        if p.outcome_known:
            return True
        event = self.done_event(p.id)
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except asyncio.TimeoutError:
            return p.outcome_known
        return True

    def done_event(self, prediction_id: str) -> asyncio.Event:
        with self._lock:
            event = self._done.get(prediction_id)
            if event is None:
                event = self._done[prediction_id] = asyncio.Event()
            return event

    def _signal_done(self, prediction_id: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._set_done, prediction_id)

    def _set_done(self, prediction_id: str) -> None:
        with self._lock:
            event = self._done.pop(prediction_id, None)
        if event is not None:
            event.set()

    def _job_for(self, p: Prediction, image: ImageIntake | None) -> RenderJob:
        plan = p.output_plan
        data: bytes | None = None
        digest: str | None = None
        source = ""
        if image is not None:
            data, digest, source = image.data, image.digest, "data-uri"
        elif p.image_digest is not None or (
            plan.image_field is None and p.plan is None and "image" in p.input
        ):
            data, source = self.images.load(
                str(p.input.get("image", "")), p.image_digest
            )
            digest = p.image_digest
        else:
            url = first_image(p.input, plan.image_field)
            if url is not None:
                data, source = self.images.load(url, None)
        width, height = plan.width, plan.height
        if p.plan is None and "image" not in p.input:  # a row of an older version
            w, _, h = str(p.input.get("size", "960*540")).partition("*")
            width, height = int(w), int(h)
        on_start = None
        if self.engine_for(p).reports_progress:

            def on_start() -> None:
                self.store.update(p, render_started_at=self.clock.now())

        text = p.input.get(plan.text_field) or p.input.get("prompt")
        if not isinstance(text, str) or not text:
            text = p.model  # a model without a prompt (an upscaler): its id
        return RenderJob(
            prediction_id=p.id,
            model=p.model,
            prompt=text[:MAX_TEXT_CHARS],
            seed=p.seed,
            width=width,
            height=height,
            output_path=self.outputs_dir / p.output_name,
            image=data,
            image_digest=digest,
            image_source=source,
            on_start=on_start,
            max_image_pixels=self.images.max_pixels,
            plan=plan,
            engine_model=self.engine_models.get(p.model),
        )

    def engine_for(self, p: Prediction) -> Engine:
        """The engine that renders ``p``: the real engine for the models its
        catalogue entries give it (``x-mock.engine_model``), the fallback for
        the rest."""
        if self.fallback is None or self.engine_models.get(p.model) == self.engine.name:
            return self.engine
        return self.fallback

    def finish_from_cache(self, p: Prediction, image: ImageIntake | None) -> bool:
        """Finish ``p`` at once if the engine already has its clip (a file lookup).

        Done on the event loop: handing a cache hit to a worker thread costs more
        than the lookup itself. Engines opt in through :class:`CachedRenderer`.
        """
        cached = (
            self._cached if self.engine_for(p) is self.engine else self._fallback_cached
        )
        if cached is None or p.outcome_known or self.objects.shared:
            # Shared objects: a worker thread puts the files before the outcome
            # is stored (blocking calls, never on the loop).
            return False
        if (
            image is None
            and first_image(p.input, p.output_plan.image_field) is not None
        ):
            return False  # an upload or a URL is read on a worker, never the loop
        try:
            result = cached.render_cached(self._job_for(p, image))
        except Exception:
            return False  # the worker will render it and report any failure
        if result is None:
            return False
        # Not stored yet: submit() writes the row once, outcome included.
        now = self.clock.now()
        p.render_started_at = p.rendered_at = now
        p.inference_ms = int(result.inference_ms)
        p.nsfw = list(result.nsfw)
        if result.output_path is not None:
            p.output_file = str(result.output_path)
        return True

    def defer(self, p: Prediction) -> None:
        """Finish ``p`` now without its clip (``lazy_renders``): the file is made
        by :meth:`materialize` when it is first asked for. Not stored yet:
        submit() writes the row once, outcome included."""
        now = self.clock.now()
        p.render_started_at = p.rendered_at = now
        p.nsfw = [False]

    def materializing(self, prediction_id: str) -> bool:
        """Whether :meth:`materialize` is making this prediction's files now."""
        with self._lock:
            return prediction_id in self._materializing

    async def materialize(self, p: Prediction) -> None:
        """Make the clip of a finished ``p`` that has none (a deferred render, or
        one whose file went): once, however many ask at the same time.

        Raises:
            RenderFailed: the engine could not make it (the task stays as it is:
                a status never goes back).
        """
        with self._lock:
            running = self._materializing.get(p.id)
            if running is None:
                running = self._materializing[p.id] = asyncio.ensure_future(
                    asyncio.wrap_future(self._executor.submit(self._make_clip, p))
                )
                running.add_done_callback(self._materialized(p.id))
        await asyncio.shield(running)

    def _materialized(
        self, prediction_id: str
    ) -> Callable[[asyncio.Future[None]], None]:
        def forget(_: asyncio.Future[None]) -> None:
            self._materializing.pop(prediction_id, None)

        return forget

    def _make_clip(self, p: Prediction) -> None:
        try:
            result = self.engine_for(p).render(self._job_for(p, None))
        except RenderFailed:
            raise
        except Exception as exc:
            log.error("render of %s crashed", p.id, exc_info=exc)
            raise RenderFailed(
                f"Internal error while rendering: {exc.__class__.__name__}: {exc}",
                code=INTERNAL_ERROR,
            ) from None
        if self.store.holds(p):
            self._keep(p, result)
            self.store.update(p, **_files_of(result))

    def queue(self, p: Prediction, image: ImageIntake | None) -> None:
        future = self._executor.submit(self._render, p, image)
        self._futures[p.id] = future

        def forget(_: Future[None], pid: str = p.id) -> None:
            self._futures.pop(pid, None)

        future.add_done_callback(forget)

    def _render(self, p: Prediction, image: ImageIntake | None) -> None:
        started = time.perf_counter()
        try:
            if not self.store.holds(p) or p.outcome_known:
                return  # reset, deleted, or a scenario decided the outcome
            job = self._job_for(p, image)
            changes: dict[str, Any] = {}
            engine = self.engine_for(p)
            if not engine.reports_progress:
                changes["render_started_at"] = self.clock.now()
            result = engine.render(job)
            if not self.store.holds(p):
                # Reset or pruned meanwhile: nothing points at the new file.
                if result.output_path is None:
                    Path(job.output_path).unlink(missing_ok=True)
                return
            self._keep(p, result)
            self.store.update(
                p,
                **changes,
                **_files_of(result),
                rendered_at=self.clock.now(),
                nsfw=list(result.nsfw),
            )
        except Exception as exc:
            if self._closing:
                log.info(
                    "render of %s cut short by shutdown; it re-runs at the next start",
                    p.id,
                )
            elif isinstance(exc, RenderFailed):
                self._fail(p, exc.code, str(exc), started)
            else:  # an engine bug must end the task, not hang it
                log.error("render of %s crashed", p.id, exc_info=exc)
                message = (
                    f"Internal error while rendering: {exc.__class__.__name__}: {exc}"
                )
                self._fail(p, INTERNAL_ERROR, message, started)
        finally:
            self._signal_done(p.id)

    def _keep(self, p: Prediction, result: RenderResult) -> None:
        """Put ``p``'s finished files in the object store (``--outputs``), before
        its outcome is stored, so a replica that reads the outcome finds them.

        Raises:
            RenderFailed: the store refused them (code 5000: the task fails
                rather than complete with files other machines cannot get).
        """
        if not self.objects.shared:
            return
        first = result.output_path
        for index, name in enumerate(p.output_names):
            path = (
                Path(first)
                if index == 0 and first is not None
                else self.outputs_dir / name
            )
            try:
                # Kept in the bucket already (a clip of the shared render
                # cache): copied there, not sent again.
                if (
                    index == 0
                    and result.kept_as is not None
                    and self.objects.copy(result.kept_as, f"outputs/{name}")
                ):
                    continue
                self.objects.put(f"outputs/{name}", path)
            except ObjectStoreError as exc:
                raise RenderFailed(
                    f"Internal error: the output could not be kept ({exc})",
                    code=INTERNAL_ERROR,
                ) from None

    def _fail(self, p: Prediction, code: int, message: str, started: float) -> None:
        if self.store.holds(p):
            self.store.update(
                p,
                failure_code=code,
                failure_message=message,
                inference_ms=int((time.perf_counter() - started) * 1000),
            )


def _files_of(result: RenderResult) -> dict[str, Any]:
    """What a render's result changes in its task's row (both render paths)."""
    changes: dict[str, Any] = {"inference_ms": int(result.inference_ms)}
    if result.output_path is not None:
        changes["output_file"] = str(result.output_path)
    if result.device is not None:
        changes["device"] = result.device
    return changes
