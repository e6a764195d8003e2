"""The mock's core: the submission pipeline, the renders, and the answers to polls.

One :class:`MockService` per server, built by ``mock_server.assembly.build_server``
with its collaborators: the clock, the store, the engine, the image loader, and
the features' components (:mod:`.components`). A submit runs, top to bottom:

    admission  each Admission (webhook URL 400, balance 403), then the fault
               plan (scenarios: 429) and its submit latency
    create     id, seed (the contract's rule), image intake, the fault's effects
    persist    store.add(prediction, charge): one group commit; only then answered
    schedule   a cached clip linked at once, or the render queued on a worker

and once a prediction with a webhook turns terminal, each Notifier is told.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import logging
import random
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from ...contracts import Catalogue, builtin_catalogue, seed_rule, shared_plan
from ...contracts.errors import WavespeedMockError
from ..errors import ApiError
from ..settings import Settings
from .clock import ServerClock
from .components import (
    Admission,
    ChosenOutputs,
    Expiring,
    FaultPlan,
    FaultSource,
    Notifier,
    OutputSource,
    SubmitRequest,
)
from .engine import Engine, RenderFailed, device_names
from .images import (
    ImageIntake,
    ImageLoader,
    first_image,
    take_data_uri,
    write_atomically,
)
from .keys import key_id, mask_key
from .leases import LeasedStore, WorkLeases
from .lifecycle import is_terminal, status_at
from .objects import LocalFiles, ObjectStore, ObjectStoreError
from .prediction import MUTABLE_FIELDS, TIMESTAMP_DIGITS, Prediction, to_api
from .profiles import DEFAULT_PROFILE, TimingProfile, parse_profile
from .renders import RenderQueue
from .retention import PruneReport, Retention, RetentionPolicy
from .shared_time import SharedStore, SharedTime
from .store import MICROS, Store, StoreError
from .watch import TerminalWatch, until_terminal

__all__ = ["UNREAD", "MockService", "SettleTimeout", "Submission", "Unread"]

log = logging.getLogger("wavespeed_mock.server")

# How long aclose() lets webhook deliveries in flight finish after a signal (SIGTERM, SIGINT): a stop must end within 2 s, so a
# delivery still under way then is cut, and logged as cut.
SIGNAL_DRAIN_S = 0.5
# settle(): the real-time bound by default (a cold render of a large clip on a
# busy machine takes seconds), and how often it looks again.
SETTLE_TIMEOUT_S = 120.0
SETTLE_POLL_S = 0.01
INLINE_MAX_CHARS = 100_000
"""An inline (text) output is at most this long in an answer."""


ELSEWHERE_POLL_S = 0.1
"""How often a sync-mode wait reads a row a worker will finish (``--no-render``)."""


class Unread(enum.Enum):
    """A row not read yet: :meth:`MockService.get_for` reads it (the one value,
    :data:`UNREAD`; None means read, and no such prediction)."""

    UNREAD = "unread"


UNREAD = Unread.UNREAD


class SettleTimeout(WavespeedMockError, TimeoutError):
    """Work due by the clock's time did not finish within the real-time bound."""


def _base64_of(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


@dataclass(frozen=True)
class Submission:
    """An accepted submit: the stored prediction and the fault it was created under."""

    prediction: Prediction
    fault: FaultPlan | None


class MockService:
    """State and behaviour of one mock server."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: ServerClock,
        store: Store,
        engine: Engine,
        images: ImageLoader,
        admissions: Sequence[Admission] = (),
        faults: FaultSource | None = None,
        notifiers: Sequence[Notifier] = (),
        expiring: Sequence[Expiring] = (),
        catalogue: Catalogue | None = None,
        outputs: OutputSource | None = None,
        fallback: Engine | None = None,
        objects: ObjectStore | None = None,
    ) -> None:
        self.settings = settings
        self.objects: ObjectStore = objects if objects is not None else LocalFiles()
        """Where finished files are also kept for other machines (``--outputs``)."""
        self.catalogue = catalogue if catalogue is not None else builtin_catalogue()
        """The models this server serves."""
        self.outputs = outputs
        """Custom outputs chosen by tests (features/outputs), if any."""
        self.base_url = settings.base_url
        self.clock = clock
        self.store = store
        self.engine = engine
        self.images = images
        self.admissions = tuple(admissions)
        self.faults = faults
        self.notifiers = tuple(notifiers)
        self.expiring = tuple(expiring)
        self.profile: TimingProfile = parse_profile(settings.profile or DEFAULT_PROFILE)
        self.shared_time = (
            SharedTime(clock, self, cast("SharedStore", store))
            if store.shared
            else None
        )
        """The clock and profile kept the same in every process on the database
        (None with the embedded store: one process)."""
        self.data_dir = Path(settings.data_dir).resolve()
        self.outputs_dir = self.data_dir / "outputs"
        self.outputs_dir.mkdir(parents=True, exist_ok=True)
        self.renders = RenderQueue(
            engine=engine,
            store=store,
            clock=clock,
            images=images,
            outputs_dir=self.outputs_dir,
            objects=self.objects,
            engine_models={
                m.id: m.engine_model for m in self.catalogue if m.engine_model
            },
            fallback=fallback,
        )
        self.watch = TerminalWatch(
            notifiers=self.notifiers,
            clock=clock,
            renders=self.renders,
            describe=self.view,
            settled=lambda p: store.update(p, notified_at=clock.now()),
        )
        self.pruner = Retention(
            RetentionPolicy.from_settings(settings),
            store=store,
            clock=clock,
            renders=self.renders,
            watch=self.watch,
            images=images,
            engine=engine,
            outputs_dir=self.outputs_dir,
            objects=self.objects,
            faults=faults,
            expiring=self.expiring,
            interval_s=settings.prune_interval_s,
        )
        self.leases = (
            WorkLeases(
                cast("LeasedStore", store),
                renders=self.renders,
                watch=self.watch,
                takes_work=not settings.no_render,
                engine=engine.name,
                devices=device_names(engine),
            )
            if store.shared
            else None
        )
        """With a shared store: this process's leases on its tasks' work, and the
        work of dead processes taken over (None with the embedded store)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()
        self._seeds = random.SystemRandom()
        # Ids need uniqueness, not secrecy: a PRNG seeded once from the OS is
        # 100x cheaper per submit than uuid4's urandom call.
        self._ids = random.Random(uuid.uuid4().int)
        self.contract_violations: list[str] = []
        """Answers that broke the contract (with ``check_responses``)."""

    def rebase(self, base_url: str) -> None:
        """Hand out URLs under ``base_url`` (a live server learns its port late)."""
        self.settings = self.settings.replace(public_url=base_url)
        self.base_url = base_url
        self.images.rebase(base_url)

    # -- start and stop ------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Attach to the event loop and finish what a previous run left in flight."""
        self._loop = loop or asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self.store.attach(self._loop)
        self.renders.attach(self._loop)
        self.watch.attach(self._loop)
        self.images.remove_partials()
        for leftover in self.outputs_dir.glob(".*.part"):
            leftover.unlink(missing_ok=True)
        self.pruner.start(self._loop)  # before anything is re-queued for it
        if self.shared_time is not None:
            self.shared_time.start()  # the time the other processes keep
        if self.leases is not None:
            # Shared: what a stopped process left is taken over when its lease
            # ends, by one process (this one or another), never by all at start.
            self.leases.start(self._loop)
            return
        for p in self.store.all():
            if self.watch.wants(p) and p.notified_at is None:
                # Still running, or ended with its webhook owed: cut at a stop or
                # a kill -9, or the task ended while the server was down.
                self.watch.watch(p)
            if p.outcome_known:
                continue
            log.info("re-queueing render of %s left in flight by a previous run", p.id)
            self.renders.queue(p, None)

    def begin_shutdown(self, *, drain_s: float | None = None) -> None:
        """The server is going away: whatever waits on a task stops waiting.

        A sync-mode submit then answers at once with the 5004 body, so a stop
        (SIGTERM, ``LiveServer.stop``) does not wait out ``sync_wait_s``.
        ``drain_s`` bounds how long :meth:`aclose` then lets webhook deliveries
        under way finish (``NOTIFY_DRAIN_S`` if None). Safe to call from any
        thread and from a signal handler.
        """
        if drain_s is not None:
            self.watch.drain_s = drain_s
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._stopping.set)

    async def until_shutdown(self) -> None:
        """Return once :meth:`begin_shutdown` was called."""
        await self._stopping.wait()

    async def aclose(self) -> None:
        """Stop: deliveries in flight finish (bounded); cut renders re-run at next start."""
        self.pruner.stop()
        await self.watch.drain()  # deliveries under way finish and log their attempt
        await self.store.detach()
        self.close()

    def close(self) -> None:
        """Stop at once (see :meth:`aclose` for the graceful way)."""
        self.pruner.stop()
        if self.leases is not None:
            self.leases.stop()
        self.watch.close()
        self.renders.close()
        self.store.close()

    # -- the submission pipeline ---------------------------------------------------

    async def submit(self, request: SubmitRequest) -> Submission:
        """Admit, create, persist and schedule one prediction (see the module doc).

        Raises:
            ApiError: 400/403/429 from admission, 400 for an unusable image,
                503 when the store cannot commit. Nothing is stored or charged then.
        """
        # admission: checks that hold nothing first, then the fault plan, which
        # may hold a rate-limit slot until the task is stored (or given back)
        if self.shared_time is not None:
            self.shared_time.refresh()  # the clock and profile another process set
        for admission in self.admissions:
            admission.admit(request)
        fault = self.faults.plan(request) if self.faults is not None else None
        try:
            if fault is not None and fault.submit_delay_s > 0:
                await self.clock.sleep_until(self.clock.now() + fault.submit_delay_s)
            # create (a cache hit is finished before persisting: one write)
            p, image, chosen = self._create(request, fault)
            if image is not None:
                await self._keep(image)
            if chosen is not None:
                try:
                    await asyncio.to_thread(self._place_chosen, p, chosen)
                except ObjectStoreError as exc:
                    raise ApiError(
                        503,
                        f"Service unavailable: the output could not be kept ({exc})",
                    ) from None
            # --no-render: a worker makes it (a cache lookup included), and
            # lazily made clips are made where they are asked for, not here.
            here = not self.settings.no_render
            cached = chosen is not None or (
                here and self.renders.finish_from_cache(p, image)
            )
            if (
                not cached
                and here
                and self.settings.lazy_renders
                and not p.outcome_known
            ):
                self.renders.defer(p)  # the clip is made on its first download
                cached = True
        except BaseException:
            self._abandon(fault)
            raise
        # persist, then schedule
        try:
            await self.store.add(p, charge_micros=round(request.price * MICROS))
        except StoreError as exc:
            self._abandon(fault)
            raise ApiError(
                503, f"Service unavailable: the task could not be stored ({exc})"
            ) from None
        except asyncio.CancelledError:
            # The request was cancelled while its row commits: the row is queued
            # and commits anyway, so it must not be left without a render.
            self._schedule(fault, p, image, cached)
            raise
        self._schedule(fault, p, image, cached)
        self.pruner.after_submit()
        return Submission(p, fault)

    def _place_chosen(self, p: Prediction, chosen: ChosenOutputs) -> None:
        """Write a custom output's files as the task's outputs; the task is then
        finished (not stored yet: submit() writes the row once). Blocking."""
        for name, (data, _) in zip(p.output_names, chosen.files, strict=False):
            write_atomically(self.outputs_dir / name, data)
            self.objects.put(f"outputs/{name}", self.outputs_dir / name)
        now = self.clock.now()
        p.render_started_at = p.rendered_at = now
        p.nsfw = [False] * max(1, len(chosen.files) or len(chosen.urls))

    def _schedule(
        self,
        fault: FaultPlan | None,
        p: Prediction,
        image: ImageIntake | None,
        cached: bool,
    ) -> None:
        if fault is not None and self.faults is not None:
            self.faults.record(fault, p)
        if self.settings.no_render:
            return  # stored free to take: a worker renders it and sends its webhook
        if not cached:
            self.renders.queue(p, image)
        if self.watch.wants(p):
            self.watch.watch(p)

    async def _keep(self, image: ImageIntake) -> None:
        """Keep a ``data:`` image for a restart, off the event loop (it may be 30 MB)."""
        try:
            await asyncio.to_thread(self.images.keep, image)
        except OSError as exc:
            raise ApiError(
                503, f"Service unavailable: the image could not be kept ({exc})"
            ) from None

    def _abandon(self, fault: FaultPlan | None) -> None:
        if fault is not None and self.faults is not None:
            self.faults.abandon(fault)

    def _create(
        self, request: SubmitRequest, fault: FaultPlan | None
    ) -> tuple[Prediction, ImageIntake | None, ChosenOutputs | None]:
        body = request.body
        rule = seed_rule()
        requested = int(body.get("seed", rule.random))
        seed = rule.resolve(requested, self._seeds.randint)
        echoed = dict(body)
        plan = request.plan
        chosen = (
            self.outputs.choose(request.model.id, body)
            if self.outputs is not None
            else None
        )
        if chosen is not None:  # a test said what this task returns
            count = len(chosen.files) or len(chosen.urls)
            fmt = chosen.files[0][1] if chosen.files else plan.format
            plan = replace(plan, count=count, format=fmt, inline=False)
        image: ImageIntake | None = None
        field = plan.image_field
        source = first_image(body, field)
        if field is not None and source is not None and source[:5].lower() == "data:":
            at = f"$.{field}" if isinstance(body.get(field), str) else f"$.{field}[0]"
            image = take_data_uri(source, self.settings.max_image_pixels, at)
            if isinstance(body.get(field), str):
                echoed[field] = image.echoed
            else:
                echoed[field] = [image.echoed, *list(body[field])[1:]]
        now = self.clock.now()
        profile = self.profile
        shift = fault.queue_shift_s if fault is not None else 0.0
        clock_driven = not (profile.polls or profile.follows_engine)
        if fault is not None and fault.slot_free_at is not None and clock_driven:
            shift += max(0.0, fault.slot_free_at - (now + profile.queue_s + shift))
        p = Prediction(
            id=f"{self._ids.getrandbits(128):032x}",
            model=request.model.id,
            input=echoed,
            seed_requested=requested,
            seed=seed,
            created_at=now,
            profile=profile.name,
            start_at=now + profile.queue_s + shift,
            done_at=now
            + profile.queue_s
            + profile.processing_for(request.model.processing_s)
            + shift,
            polls_needed=profile.polls,
            follows_engine=profile.follows_engine,
            key_id=key_id(request.api_key),
            key_hint=mask_key(request.api_key),
            webhook=request.webhook,
            image_digest=image.digest if image is not None else None,
            plan=(
                shared_plan(replace(plan, urls=tuple(chosen.urls)))
                if chosen
                else plan  # shared where memoised (ModelSpec.outputs_for)
            ),
        )
        if fault is not None:
            p.scenario = fault.name or "unnamed"
            p.flag_nsfw = fault.nsfw
            p.forced_status = fault.forced_status
            p.failure_code = fault.failure_code
            p.failure_message = fault.failure_message
        return p, image, chosen

    # -- polls and views -----------------------------------------------------------

    def get(self, prediction_id: str) -> Prediction:
        p = self.store.get(prediction_id)
        if p is None:
            raise ApiError(404, f"Prediction {prediction_id!r} not found")
        return p

    async def get_for(
        self,
        prediction_id: str,
        api_key: str,
        read: Prediction | Unread | None = UNREAD,
    ) -> Prediction:
        """A prediction as the API shows it to ``api_key``: only the key that made
        it sees it (the real API scopes tasks to the account); others get the
        404 of an unknown id, so they cannot tell it exists. Read with
        ``Store.fetch`` (a shared store's query does not block the event loop),
        unless the request's row was read already (``read``: the wire layer's).

        Raises:
            ApiError: 404.
        """
        p = await self.store.fetch(prediction_id) if read is UNREAD else read
        if p is None or p.key_id != key_id(api_key):
            raise ApiError(404, f"Prediction {prediction_id!r} not found")
        return p

    async def poll(
        self,
        prediction_id: str,
        api_key: str,
        read: Prediction | Unread | None = UNREAD,
    ) -> dict[str, Any]:
        """The prediction object a result poll of ``api_key`` answers (counts the poll).

        A poll never waits for a render: ``status_at`` shows no outcome before it
        is known, so a clip still rendering reads ``processing``, and the instant
        and polls:N profiles end on the first poll at or after their rule once
        the clip exists (the plugin's ``wait_for_renders`` makes a sequence exact).
        """
        p = await self.get_for(prediction_id, api_key, read)
        if self.faults is not None:
            await self.faults.on_poll(p)
        if p.polls_needed and not is_terminal(self.status(p)):
            self.store.update(p, polls=p.polls + 1)
            self.watch.poll_answered(p.id)
        return await self.result(p)

    async def result(self, p: Prediction) -> dict[str, Any]:
        """The prediction object a client reads (a poll, a sync answer).

        Its view, with the outputs as naked base64 of the files once completed
        when the submit asked for ``enable_base64_output`` [documented:
        base64-output]; read and encoded off the event loop.
        """
        data = self.view(p)
        if (
            data["status"] == "completed"
            and p.input.get("enable_base64_output") is True
            and not p.output_plan.inline
        ):
            await self.ensure_clip(p)
            try:
                data["outputs"] = [
                    await asyncio.to_thread(_base64_of, Path(folder) / name)
                    for folder, name in (self._file_of(p, n) for n in p.output_names)
                ]
            except OSError as exc:
                raise ApiError(
                    503, f"Service unavailable: the output could not be read ({exc})"
                ) from None
        return data

    def view(self, p: Prediction, *, accepted: bool = False) -> dict[str, Any]:
        digits = self.faults.timestamp_digits(p) if self.faults is not None else None
        data = to_api(
            p,
            self.clock.now(),
            self.base_url,
            accepted=accepted,
            timestamp_digits=self._digits(p) if digits is None else digits,
        )
        if data["outputs"] and p.output_plan.inline:
            data["outputs"] = [self._inline_text(p)]
        elif data["outputs"] and self.settings.presign_s and not p.output_plan.urls:
            # --presign: downloads go to the bucket, where the files were put
            # before the task completed.
            data["outputs"] = [
                self._presigned(name) or url
                for name, url in zip(p.output_names, data["outputs"], strict=False)
            ]
        return data

    def _presigned(self, name: str) -> str | None:
        """The bucket's signed URL of output ``name`` (None: the mock's own URL
        serves it, the signing having failed: said in the log)."""
        try:
            return self.objects.presigned(f"outputs/{name}", self.settings.presign_s)
        except ObjectStoreError as exc:
            log.warning("output URL not presigned: %s", exc)
            return None

    def _digits(self, p: Prediction) -> int:
        """``created_at``'s fractional digits: pinned by the setting, or varied
        per task the way real bodies vary (Go's RFC3339Nano drops trailing
        zeros: 0, 2, 3 or 9 digits seen) [observed], fixed for a task."""
        pinned = self.settings.timestamp_digits
        if pinned != "varied":
            return int(pinned)
        return TIMESTAMP_DIGITS[zlib.crc32(p.id.encode()) % len(TIMESTAMP_DIGITS)]

    def _inline_text(self, p: Prediction) -> str:
        """An inline output's text (an LLM's answer): its small file, read."""
        folder, name = self._file_of(p, p.output_name)
        try:
            data = (Path(folder) / name).read_bytes()[: INLINE_MAX_CHARS * 4]
            return data.decode("utf-8", "replace")[:INLINE_MAX_CHARS]
        except OSError:
            return ""

    def predictions(self) -> list[Prediction]:
        """Every stored prediction, oldest first (history, the control API)."""
        return self.store.all()

    def key_hints(self) -> dict[str, str]:
        """Every key id the store knows, with its masked key for display; a key
        whose predictions were all pruned shows only the start of its id."""
        hints = {p.key_id: p.key_hint for p in self.store.all()}
        return {k: hints.get(k, f"(pruned) {k[:8]}") for k in self.store.key_ids()}

    def delete_for(self, key: str, prediction_ids: Sequence[str]) -> int:
        """Mark the predictions of the key whose id is ``key`` deleted and remove
        their clips; the count deleted. Unknown ids, other keys' predictions and
        ones deleted already are skipped, not errors. [inferred]"""
        count = 0
        for pid in dict.fromkeys(prediction_ids):
            p = self.store.get(pid)
            if p is None or p.key_id != key or p.forced_status == "deleted":
                continue
            self.store.update(p, forced_status="deleted")
            for name in p.output_names:
                (self.outputs_dir / name).unlink(missing_ok=True)
            try:
                self.objects.delete(f"outputs/{name}" for name in p.output_names)
            except ObjectStoreError as exc:
                log.warning("the files of %s stay in the object store: %s", pid, exc)
            count += 1
        return count

    def status(self, p: Prediction) -> str:
        return status_at(p, self.clock.now())

    async def download(self, name: str) -> tuple[Path, str, str]:
        """The folder, file name and media type of the output file ``name``
        (``<id>.<ext>`` or ``<id>-<n>.<ext>``) for the output route, its row
        read once (without blocking the loop), its clip made or fetched first
        when it is not here (:meth:`ensure_clip`).

        Raises:
            ApiError: 503 when the clip could not be made or fetched.
        """
        p = await self.store.fetch(name.split(".", 1)[0].split("-", 1)[0])
        if p is not None:
            await self.ensure_clip(p)
        return self._output_of(p, name)

    async def ensure_clip(self, p: Prediction) -> None:
        """Make the clip of a completed prediction that has none yet (a render
        deferred by ``lazy_renders``), or fetch it from the object store (made
        on another machine), before it is served or read.

        Raises:
            ApiError: 503 when the engine could not make it.
        """
        if not (self.settings.lazy_renders or self.objects.shared):
            return  # clips are made at submit: nothing to check on a download
        if self.status(p) != "completed":
            return
        # A file being made may exist already, half written by an engine that
        # writes in place: wait for the making, not for the name.
        missing = [
            name
            for name in p.output_names
            if not Path(*self._file_of(p, name)).is_file()
        ]
        if not missing and not self.renders.materializing(p.id):
            return
        if self.objects.shared and missing and await self._fetch_outputs(missing):
            return  # made on another machine: kept in the object store
        if not self.settings.lazy_renders:
            return  # gone: the download answers 404
        try:
            await self.renders.materialize(p)
        except RenderFailed as exc:
            raise ApiError(
                503, f"Service unavailable: the clip could not be made ({exc})"
            ) from None

    async def _fetch_outputs(self, names: list[str]) -> bool:
        """Bring these output files from the object store into ``outputs/``;
        whether every one is here now."""

        def fetch() -> bool:
            return all(
                self.objects.get(f"outputs/{name}", self.outputs_dir / name)
                for name in names
            )

        try:
            return await asyncio.to_thread(fetch)
        except ObjectStoreError as exc:
            raise ApiError(
                503, f"Service unavailable: the output could not be read ({exc})"
            ) from None

    def output_file(self, prediction_id: str) -> tuple[Path, str]:
        """The folder and name of a prediction's first output file."""
        p = self.store.get(prediction_id)
        name = p.output_name if p is not None else f"{prediction_id}.mp4"
        folder, found, _ = self._output_of(p, name)
        return folder, found

    def _output_of(self, p: Prediction | None, name: str) -> tuple[Path, str, str]:
        """Where ``p``'s output file ``name`` is, and its media type; a cached
        first output is served from the cache."""
        if p is None or p.forced_status == "deleted" or name not in p.output_names:
            return self.outputs_dir, name, "application/octet-stream"
        return (*self._file_of(p, name), p.output_plan.media_type)

    def _file_of(self, p: Prediction, name: str) -> tuple[Path, str]:
        """The folder and file name of ``p``'s output ``name``: a cached first
        output is the cache's file (another machine's cache path, with
        ``--outputs``: the copy fetched into ``outputs/``)."""
        if p.output_file and name == p.output_name:
            path = Path(p.output_file)
            if not (self.objects.shared and not path.is_file()):
                return path.parent, path.name
        return self.outputs_dir, name

    # -- waiting -------------------------------------------------------------------

    async def wait_until_terminal(self, p: Prediction, deadline: float) -> bool:
        """Wait until ``p`` is terminal or the clock reaches ``deadline`` (sync mode)."""
        if self.settings.no_render:
            return await self._until_terminal_elsewhere(p, deadline)
        return await until_terminal(p, deadline, clock=self.clock, renders=self.renders)

    async def _until_terminal_elsewhere(self, p: Prediction, deadline: float) -> bool:
        """:meth:`wait_until_terminal` for a task a worker renders (``--no-render``):
        its row is read again every ``ELSEWHERE_POLL_S`` of real time, and what
        the worker changed is copied into ``p``."""
        while True:
            if is_terminal(self.status(p)):
                return True
            if self.clock.now() >= deadline or self._stopping.is_set():
                return False
            await asyncio.sleep(ELSEWHERE_POLL_S)
            fresh = await self.store.fetch(p.id)
            if fresh is None:
                return False
            for name in MUTABLE_FIELDS:
                setattr(p, name, getattr(fresh, name))

    # -- settling ------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the service runs on (once started)."""
        if self._loop is None:
            raise RuntimeError("the service has not started; start() attaches a loop")
        return self._loop

    async def settle(self, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        """Return once everything due by the clock's present time has happened.

        Due: the render of every prediction whose schedule has passed (all
        renders under the ``polls:N`` and ``engine`` profiles), and the
        notifications (webhook attempts) of every prediction now terminal, up to
        a retry that waits for a later time. Renders run in real time, so a test
        that moved a virtual clock calls this to see their outcome.

        Raises:
            SettleTimeout: something due was still under way after ``timeout_s``
                seconds of real time (named in the message).
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout_s
        # Polled, not awaited on events: what is due changes as renders finish
        # and watchers wake, and a short poll sees every kind of work alike.
        while True:
            busy = self._unsettled()
            if not busy:
                return
            if loop.time() >= give_up:
                raise SettleTimeout(
                    f"still under way after {timeout_s:g} s of real time: "
                    + ", ".join(busy[:5])
                    + (f" and {len(busy) - 5} more" if len(busy) > 5 else "")
                )
            await asyncio.sleep(SETTLE_POLL_S)

    def _unsettled(self) -> list[str]:
        now = self.clock.now()
        busy = []
        for pid in self.renders.pending_ids():
            p = self.store.get(pid)
            if p is not None and (
                p.polls_needed or p.follows_engine or p.done_at <= now
            ):
                busy.append(f"the render of {pid}")
        return busy + self.watch.unsettled(now)

    # -- control -------------------------------------------------------------------

    def reset(self) -> int:
        """Forget every prediction, charge, scenario, delivery log and upload; cancel
        renders. The render cache stays (it is content-addressed)."""
        self.renders.cancel_all()
        count = self.store.clear()
        if self.faults is not None:
            self.faults.reset()
        for notifier in self.notifiers:
            notifier.reset()
        if self.outputs is not None:
            self.outputs.reset()
        for expiring in self.expiring:
            expiring.clear()
        for folder in (self.outputs_dir, self.images.inputs_dir):
            if folder.is_dir():
                for f in folder.iterdir():
                    if f.is_file():
                        f.unlink(missing_ok=True)
        try:
            self.objects.clear()
        except ObjectStoreError as exc:
            log.warning("the object store keeps files past this reset: %s", exc)
        return count

    # -- retention -----------------------------------------------------------------

    @property
    def retention(self) -> RetentionPolicy:
        """The configured retention (``pruner`` applies it)."""
        return self.pruner.policy

    def prune(self, policy: RetentionPolicy | None = None) -> PruneReport:
        """Apply retention now, blocking (see :meth:`Retention.prune`)."""
        return self.pruner.prune(policy)

    async def aprune(self, policy: RetentionPolicy | None = None) -> PruneReport:
        """Apply retention from the event loop (see :meth:`Retention.aprune`)."""
        return await self.pruner.aprune(policy)

    def set_profile(self, text: str) -> TimingProfile:
        self.profile = parse_profile(text)
        self.time_changed()
        return self.profile

    def time_changed(self) -> None:
        """The clock or the profile was changed here (the control API): every
        process on a shared database keeps the same from now on."""
        if self.shared_time is not None:
            self.shared_time.publish()

    def pending_renders(self) -> int:
        return len(self.renders)

    def renders_settled(self) -> bool:
        """Whether every stored prediction's render has an outcome (none queued or running)."""
        return len(self.renders) == 0 and all(p.outcome_known for p in self.store.all())
