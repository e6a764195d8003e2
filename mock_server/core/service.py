"""The mock's core: accepts predictions, schedules renders, answers their state.

One :class:`MockService` per app. It owns the store, the clock, the engine and
the render workers; the HTTP layer (``app.py``) and the control API call it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ...contracts import ModelSpec
from ..errors import ApiError
from ..http.journal import JOURNAL_SIZE
from ..settings import Settings
from .clock import Clock, RealClock, VirtualClock
from .engine import Engine, RenderFailed, RenderJob, load_engine_class
from .images import ImageLoader, decode_data_uri, probe_image
from .prediction import TERMINAL_STATUSES, Prediction, status_at, to_api
from .profiles import TimingProfile, parse_profile
from .store import PredictionStore

__all__ = ["MockService"]

log = logging.getLogger("wavespeed_mock.server")

SEED_MAX = 2147483647
# How long a poll under the instant or polls:N profile waits for a render still
# running, so that "completed on the first (Nth) poll" holds for a cold render.
RENDER_WAIT_S = 60.0


class MockService:
    """State and behaviour of one mock server."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or (
            VirtualClock() if settings.virtual_clock else RealClock()
        )
        self.profile: TimingProfile = parse_profile(settings.profile)
        self.data_dir = Path(settings.data_dir)
        self.outputs_dir = self.data_dir / "outputs"
        self.outputs_dir.mkdir(parents=True, exist_ok=True)
        self.store = PredictionStore(self.data_dir / "state.sqlite3")
        self.images = ImageLoader(
            data_dir=self.data_dir,
            base_url=settings.base_url,
            fetch_remote=settings.fetch_remote_images,
            max_pixels=settings.max_image_pixels,
        )
        self.engine: Engine = engine or load_engine_class(settings.engine)(settings)  # type: ignore[call-arg]
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, int(self.engine.max_concurrency)),
            thread_name_prefix="wavespeed-render",
        )
        self._futures: dict[str, Future[None]] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._random = random.SystemRandom()
        # Ids need uniqueness, not secrecy: a PRNG seeded once from the OS is
        # 100x cheaper per submit than uuid4's urandom call.
        self._ids = random.Random(uuid.uuid4().int)
        self.base_url = settings.base_url
        self.contract_violations: list[str] = []
        # Extension hooks for the account, upload, webhook and scenario layers.
        self.admission_checks: list[Callable[[ModelSpec, str], None]] = []
        """Run before a prediction is created; raise ApiError to refuse (403, 429)."""
        self.created_listeners: list[Callable[[Prediction], None]] = []
        """Run right after a prediction is stored (ledger charges, scenarios)."""
        self.terminal_listeners: list[
            Callable[[Prediction, dict[str, Any]], Awaitable[None]]
        ] = []
        """Awaited once a prediction with a webhook turns terminal, with its view."""
        self._watchers: set[asyncio.Task[None]] = set()
        self.webhook_checks: list[Callable[[str], None]] = []
        """Run on a submit's ``?webhook=`` URL; raise ApiError to refuse it."""
        self.close_listeners: list[Callable[[], object]] = []
        """Run by :meth:`close`, after the renders stopped (the ledger closes its file)."""
        self.reset_listeners: list[Callable[[], object]] = []
        """Run by :meth:`reset` (the ledger and webhook log forget too)."""
        self.render_listeners: list[Callable[[Prediction], None]] = []
        """Run after a successful render (scenarios force NSFW flags here)."""
        self.poll_hooks: list[Callable[[Prediction], Awaitable[None]]] = []
        """Awaited on each result poll; may sleep (latency) or raise ApiError (5xx)."""
        self.submit_hooks: list[Callable[[Any, str], Awaitable[None]]] = []
        """Awaited on each submit with the request and API key, before the body is read."""
        self.sync_deadline_hooks: list[Callable[[Prediction, float], float]] = []
        """Adjust a sync-mode wait's deadline (a scenario can force the timeout)."""
        self._poll_signals: dict[str, asyncio.Event] = {}
        # Set by the layers that install themselves (see app._extension_routes).
        self.webhook_log: Any = None
        self.webhook_secrets: Any = None
        self.uploads: Any = None
        self.account: Any = None
        self.scenarios: Any = None
        self.journal: deque[dict[str, Any]] = deque(maxlen=JOURNAL_SIZE)
        """The last requests and their statuses (see journal.py)."""
        self.extension_routes: list[Any] | None = None
        """Routes of the webhook, upload and account layers, once installed."""
        self._closing = False

    def output_file(self, prediction_id: str) -> tuple[Path, str]:
        """The folder and name of a prediction's clip, for the output route."""
        p = self.store.get(prediction_id)
        if p is not None and p.output_file and p.forced_status != "deleted":
            path = Path(p.output_file)
            return path.parent, path.name
        return self.outputs_dir, f"{prediction_id}.mp4"

    def rebase(self, base_url: str) -> None:
        """Hand out URLs under ``base_url`` (a live server learns its port late)."""
        self.settings = self.settings.replace(public_url=base_url)
        self.base_url = base_url
        self.images = ImageLoader(
            data_dir=self.data_dir,
            base_url=base_url,
            fetch_remote=self.settings.fetch_remote_images,
            max_pixels=self.settings.max_image_pixels,
        )

    # -- start and stop ------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Attach to the event loop and finish what a previous run left in flight."""
        self._loop = loop or asyncio.get_running_loop()
        for p in self.store.all():
            unfinished = self.status(p) not in TERMINAL_STATUSES
            if p.webhook and self.terminal_listeners and unfinished:
                self._watch(p)
            if p.outcome_known or p.forced_status:
                continue
            output = Path(p.output_file or self.outputs_dir / p.output_name)
            if output.exists() and p.rendered_at is not None:
                continue
            log.info("re-queueing render of %s left in flight by a previous run", p.id)
            self._queue_render(p)

    def close(self) -> None:
        """Stop: renders cut short stay in flight, to be re-queued by the next start."""
        self._closing = True
        for task in list(self._watchers):
            task.cancel()
        for future in list(self._futures.values()):
            future.cancel()
        self.engine.close()
        self._executor.shutdown(wait=True, cancel_futures=True)
        for listener in self.close_listeners:
            listener()
        self.store.close()

    # -- predictions ---------------------------------------------------------------

    def submit(
        self,
        model: ModelSpec,
        body: dict[str, Any],
        *,
        api_key: str,
        webhook: str | None = None,
    ) -> Prediction:
        """Record a validated request and queue its render."""
        if webhook is not None:
            for webhook_check in self.webhook_checks:
                webhook_check(webhook)
        for check in self.admission_checks:
            check(model, api_key)
        prediction_id = f"{self._ids.getrandbits(128):032x}"
        seed_requested = int(body.get("seed", -1))
        seed = (
            self._random.randint(0, SEED_MAX)
            if seed_requested == -1
            else seed_requested
        )
        echoed = dict(body)
        image = body.get("image")
        if (
            model.takes_image
            and isinstance(image, str)
            and image[:5].lower() == "data:"
        ):
            data = decode_data_uri(image)
            try:
                probe_image(data, self.settings.max_image_pixels)
            except ValueError as exc:
                raise ApiError(400, f"Invalid request body: $.image: {exc}") from None
            self.images.save_input(prediction_id, data)
            echoed["image"] = image[: image.index(",") + 1] + f"<{len(data)} bytes>"
        now = self.clock.now()
        profile = self.profile
        p = Prediction(
            id=prediction_id,
            model=model.id,
            input=echoed,
            seed_requested=seed_requested,
            seed=seed,
            created_at=now,
            profile=profile.name,
            start_at=now + profile.queue_s,
            done_at=now + profile.queue_s + profile.processing_s,
            polls_needed=profile.polls,
            follows_engine=profile.follows_engine,
            api_key=api_key,
            webhook=webhook,
        )
        cached = self._render_from_cache(p)  # before storing: one write, not two
        self.store.add(p)
        for listener in self.created_listeners:
            listener(p)
        if cached:
            for render_listener in self.render_listeners:
                render_listener(p)
        else:
            self._queue_render(p)
        if p.webhook and self.terminal_listeners:
            self._watch(p)
        return p

    def _watch(self, p: Prediction) -> None:
        """Tell the terminal listeners once ``p`` turns terminal."""
        loop = self._loop
        if loop is None:
            return

        async def watch() -> None:
            await self.wait_until_terminal(p, math.inf)
            while self.status(p) not in TERMINAL_STATUSES:
                # polls:N: terminal only once the Nth poll has been answered.
                signal = self._poll_signals.setdefault(p.id, asyncio.Event())
                await signal.wait()
                signal.clear()
            self._poll_signals.pop(p.id, None)
            view = self.view(p)
            for listener in self.terminal_listeners:
                try:
                    await listener(p, view)
                except Exception:
                    log.exception("terminal listener failed for %s", p.id)

        task = loop.create_task(watch())
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    def get(self, prediction_id: str) -> Prediction:
        p = self.store.get(prediction_id)
        if p is None:
            raise ApiError(404, f"Prediction {prediction_id!r} not found")
        return p

    async def poll(self, prediction_id: str) -> dict[str, Any]:
        """The prediction object a result poll answers (counts the poll)."""
        p = self.get(prediction_id)
        for hook in self.poll_hooks:
            await hook(p)
        if p.polls_needed and status_at(p, self.clock.now()) not in TERMINAL_STATUSES:
            self.store.update(p, polls=p.polls + 1)
            if p.polls >= p.polls_needed:
                await self.wait_for_outcome(p, RENDER_WAIT_S)
            signal = self._poll_signals.get(p.id)
            if signal is not None:
                signal.set()
        elif p.profile == "instant":
            await self.wait_for_outcome(p, RENDER_WAIT_S)
        return self.view(p)

    def view(self, p: Prediction, *, accepted: bool = False) -> dict[str, Any]:
        return to_api(p, self.clock.now(), self.base_url, accepted=accepted)

    def status(self, p: Prediction) -> str:
        return status_at(p, self.clock.now())

    async def wait_for_outcome(self, p: Prediction, timeout_s: float) -> bool:
        """Wait (in real time) until the render of ``p`` finished or failed."""
        if p.outcome_known:
            return True
        event = self._done_event(p.id)
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except asyncio.TimeoutError:
            return p.outcome_known
        return True

    async def wait_until_terminal(self, p: Prediction, deadline: float) -> bool:
        """Wait until ``p`` is terminal or the clock reaches ``deadline``.

        Sync mode uses this. Poll counts do not apply here (a sync submit has no
        polls), so a polls:N prediction is terminal once its outcome is known.
        """
        while True:
            now = self.clock.now()
            if p.outcome_known and (
                p.polls_needed or p.follows_engine or now >= p.done_at
            ):
                return True
            if status_at(p, now) in TERMINAL_STATUSES:
                return True
            if now >= deadline:
                return False
            waits: list[asyncio.Future[Any]] = [
                asyncio.ensure_future(
                    self.clock.sleep_until(
                        min(deadline, max(p.done_at, now))
                        if p.outcome_known
                        else deadline
                    )
                ),
            ]
            if not p.outcome_known:
                waits.append(asyncio.ensure_future(self._done_event(p.id).wait()))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    def _done_event(self, prediction_id: str) -> asyncio.Event:
        with self._lock:
            event = self._done.get(prediction_id)
            if event is None:
                event = self._done[prediction_id] = asyncio.Event()
            return event

    # -- rendering -----------------------------------------------------------------

    def _queue_render(self, p: Prediction) -> None:
        future = self._executor.submit(self._render, p)
        self._futures[p.id] = future

        def forget(_: Future[None], pid: str = p.id) -> None:
            self._futures.pop(pid, None)

        future.add_done_callback(forget)

    def _render_from_cache(self, p: Prediction) -> bool:
        """Finish ``p`` at once if the engine already has its clip (a file lookup).

        Done on the caller's thread: handing a cache hit to a worker thread costs
        more than the lookup itself, and under load the threads fight the event
        loop for the GIL. Engines opt in with ``render_cached(job)``.
        """
        render_cached = getattr(self.engine, "render_cached", None)
        if render_cached is None or p.outcome_known:
            return False
        if "image" in p.input and self.settings.fetch_remote_images:
            return False  # a fetch belongs on a worker thread, never the event loop
        try:
            result = render_cached(self._job_for(p))
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

    def _render(self, p: Prediction) -> None:
        started = time.perf_counter()
        try:
            if self.store.get(p.id) is not p or p.outcome_known:
                return  # reset, deleted, or a scenario decided the outcome
            job = self._job_for(p)
            if not self.engine.reports_progress:
                p.render_started_at = self.clock.now()  # persisted with the outcome
            result = self.engine.render(job)
            if self.store.get(p.id) is not p:
                return
            self.store.update(
                p,
                rendered_at=self.clock.now(),
                inference_ms=int(result.inference_ms),
                nsfw=list(result.nsfw),
            )
            for listener in self.render_listeners:
                listener(p)
        except Exception as exc:
            if self._closing:
                log.info(
                    "render of %s cut short by shutdown; it re-runs at the next start",
                    p.id,
                )
            elif isinstance(exc, RenderFailed):
                self._fail(p, exc.code, str(exc), started)
            else:  # an engine bug must end the task, not hang it
                self._crash(p, exc, started)
        finally:
            self._signal_done(p.id)

    def _crash(self, p: Prediction, exc: Exception, started: float) -> None:
        log.error("render of %s crashed", p.id, exc_info=exc)
        self._fail(
            p,
            5000,
            f"Internal error while rendering: {exc.__class__.__name__}: {exc}",
            started,
        )

    def _fail(self, p: Prediction, code: int, message: str, started: float) -> None:
        if self.store.get(p.id) is p:
            self.store.update(
                p,
                failure_code=code,
                failure_message=message,
                inference_ms=int((time.perf_counter() - started) * 1000),
            )

    def _job_for(self, p: Prediction) -> RenderJob:
        image: bytes | None = None
        source = ""
        width = height = None
        if "image" in p.input:
            image, source = self.images.load(p.id, str(p.input["image"]))
        else:
            size = str(p.input.get("size", "960*540"))
            w, _, h = size.partition("*")
            width, height = int(w), int(h)
        extra: dict[str, Any] = {}
        if self.engine.reports_progress:
            extra["on_start"] = lambda: self.store.update(
                p, render_started_at=self.clock.now()
            )
        return RenderJob(
            prediction_id=p.id,
            model=p.model,
            prompt=str(p.input.get("prompt", "")),
            seed=p.seed,
            width=width,
            height=height,
            output_path=self.outputs_dir / p.output_name,
            image=image,
            image_source=source,
            extra=extra,
        )

    def _signal_done(self, prediction_id: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._set_done, prediction_id)

    def _set_done(self, prediction_id: str) -> None:
        with self._lock:
            event = self._done.pop(prediction_id, None)
        if event is not None:
            event.set()

    # -- control -------------------------------------------------------------------

    def reset(self) -> int:
        """Forget every prediction and cancel queued renders."""
        for future in list(self._futures.values()):
            future.cancel()
        count = self.store.clear()
        self.journal.clear()
        for listener in self.reset_listeners:
            listener()
        for folder in (self.outputs_dir, self.images.inputs_dir):
            if folder.is_dir():
                for f in folder.iterdir():
                    if f.is_file():
                        f.unlink(missing_ok=True)
        return count

    def use_virtual_clock(self) -> VirtualClock:
        """Freeze time at its present value; only :meth:`advance` moves it."""
        if not isinstance(self.clock, VirtualClock):
            self.clock = VirtualClock(start=self.clock.now())
        return self.clock

    def use_real_clock(self) -> None:
        """Back to the wall clock, shifted so that time never goes backwards."""
        current = self.clock
        if isinstance(current, VirtualClock):
            now = current.now()
            self.clock = RealClock(offset=max(0.0, now - RealClock().now()))
            current.set(math.inf)  # wake its sleepers; they re-check on the new clock

    def set_profile(self, text: str) -> TimingProfile:
        self.profile = parse_profile(text)
        return self.profile

    def pending_renders(self) -> int:
        return len(self._futures)
