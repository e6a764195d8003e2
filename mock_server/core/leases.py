"""A task's work (its render, its webhook) leased to one process, taken over
when that process dies: the PostgreSQL mode's answer to ``kill -9``.

With several processes on one database, the process that took a submit renders
it and sends its webhook. The row says so: ``owner`` (the process) and
``work_lease`` (until when, on the database's clock), written in the same
insert as the task itself. :class:`WorkLeases` runs in every process: every
third of a lease it releases the leases whose work is done, extends the
others, and takes over the work of tasks whose lease ran out (their process
stopped renewing), one process per task (``FOR UPDATE SKIP LOCKED``). A
taken-over task is rendered again if its outcome is unknown and watched until
its webhook is sent.

So nothing answered is lost to a crash: the work resumes within one lease
(``--lease``, 10 s by default) on any live process. Delivery is at least once:
a process that was only slow (paused longer than its lease) and another that
took its work over may both send a webhook, with the same ``webhook-id``.

The embedded SQLite store has one process, which resumes everything at its
next start (``MockService.start``); this module is not used there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from .prediction import Prediction
from .renders import RenderQueue
from .store import StoreError
from .watch import TerminalWatch

__all__ = ["LeasedStore", "WorkLeases"]

log = logging.getLogger("wavespeed_mock.server")

TAKE_AT_MOST = 100
"""Tasks one pass takes at most, without a bound of slots."""


class LeasedStore(Protocol):
    """A store that leases tasks' work to processes (``PostgresStore``)."""

    lease_s: float

    def renew(self) -> None:
        """Release this process's leases whose work is done; extend the rest."""
        ...

    def take_over(self, limit: int = 100) -> list[Prediction]:
        """Lease to this process at most ``limit`` tasks whose lease ran out or
        whose process died, and the webhooks a dead process owed (they need no
        render slot)."""
        ...

    def release(self) -> None:
        """End this process's leases now (a stop): others take the work at once."""
        ...

    def register(self, role: str, engine: str, devices: tuple[str, ...] = ()) -> None:
        """List this process among the processes (``GET /_mock/workers``)."""
        ...

    def on_work(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (from any thread) when work is freed anywhere."""
        ...


class WorkLeases:
    """Keeps this process's leases and takes over the work of dead processes."""

    def __init__(
        self,
        store: LeasedStore,
        *,
        renders: RenderQueue,
        watch: TerminalWatch,
        takes_work: bool = True,
        engine: str = "",
        devices: tuple[str, ...] = (),
    ) -> None:
        self.store = store
        self.role = "serve" if takes_work else "api"
        """What ``GET /_mock/workers`` calls this process (``worker`` for
        ``wavespeed-mock worker``, set there)."""
        self.engine = engine
        self.devices = devices
        """The engine's devices (``core.engine.device_names``), listed with it."""
        self.renders = renders
        self.watch = watch
        self.takes_work = takes_work
        """False for a ``--no-render`` server: it takes no work, workers do."""
        self.every_s = store.lease_s / 3  # two renewals may fail before a lease ends
        """Seconds between passes; a ``wavespeed-mock worker`` looks for work
        more often (``cli/worker.py``)."""
        self.slots: int | None = None
        """At most this many renders at once (a ``wavespeed-mock worker``: its
        engine's ``max_concurrency``): a pass takes only what free slots allow,
        so that work queued here is not kept from idle workers elsewhere.
        None: take every task whose lease ended (a server taking over a dead
        one's work)."""
        self.taken = 0
        """Tasks taken over from other processes since the start."""
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wake = asyncio.Event()
        if self.takes_work:
            # Freed work (a --no-render submit, a stop) is taken at once, not
            # at the next pass.
            def wake() -> None:  # on the store's listening thread
                loop.call_soon_threadsafe(self._wake.set)

            self.store.on_work(wake)
        self._task = loop.create_task(self._run())

    def stop(self) -> None:
        """Stop renewing and hand this process's unfinished work to the others
        now (a graceful stop; after a crash they wait for the lease to end)."""
        if self._task is None:
            return
        self._task.cancel()
        self._task = None
        try:
            self.store.release()
        except StoreError as exc:
            log.warning("could not hand over leased work at the stop: %s", exc)

    async def _run(self) -> None:
        try:
            await asyncio.to_thread(
                self.store.register, self.role, self.engine, self.devices
            )
        except StoreError as exc:
            log.warning("could not list this process among the processes: %s", exc)
        while True:
            try:
                await self.pass_once()
            except StoreError:
                pass  # an outage: logged by pass_once, tried again next time
            except Exception:  # anything else must not end the renewals
                log.exception("renewing or taking over leased work failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.every_s)
            self._wake.clear()

    async def pass_once(self) -> list[Prediction]:
        """Renew this process's leases and resume the work of dead processes;
        the tasks taken over."""
        try:
            await asyncio.to_thread(self.store.renew)
            # With no slot free, a pass still takes the webhooks a dead process
            # owed: they need no render slot.
            taken = (
                await asyncio.to_thread(self.store.take_over, self.free_slots())
                if self.takes_work
                else []
            )
        except StoreError as exc:
            log.warning("could not renew or take over leased work: %s", exc)
            raise
        for p in taken:
            self._resume(p)
        return taken

    def free_slots(self) -> int:
        """How many tasks a pass may take now (``slots`` less the renders queued
        or running here; ``TAKE_AT_MOST`` without a bound)."""
        if self.slots is None:
            return TAKE_AT_MOST
        return max(0, self.slots - len(self.renders))

    def _resume(self, p: Prediction) -> None:
        log.info(
            "taking over the work of %s (handed off, or its process stopped)", p.id
        )
        self.taken += 1
        if not p.outcome_known:
            self.renders.queue(p, None)
        if self.watch.wants(p) and p.notified_at is None:
            self.watch.watch(p)
