"""Watching predictions until they end, and telling the notifiers (webhooks).

A notification is owed until the notifiers are done (``Prediction.notified_at``
stored through ``settled``); the service watches every owed one again at
start-up, so a webhook cut by a stop or a ``kill -9`` is sent after the restart
(at least once: a delivery cut after the receiver took it is sent again).

:class:`TerminalWatch` keeps one task per prediction with a webhook: it waits
until the prediction is terminal on the server's clock (a render's end, the
schedule, and under ``polls:N`` the Nth poll), then hands its view to each
:class:`~.components.Notifier`. The service owns one and tells it what happens
(a new prediction, an answered poll, a pruned one, a stop); the watch never
calls the service back: it is given the clock, the render queue and the one
function that describes a prediction as the API shows it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .clock import ServerClock
from .components import Notifier
from .lifecycle import is_terminal, status_at
from .prediction import Prediction
from .renders import RenderQueue

__all__ = ["NOTIFY_DRAIN_S", "TerminalWatch", "until_terminal"]

log = logging.getLogger("wavespeed_mock.server")

NOTIFY_DRAIN_S = 15.0
"""How long a stop lets webhook deliveries under way finish, by default."""


async def until_terminal(
    p: Prediction, deadline: float, *, clock: ServerClock, renders: RenderQueue
) -> bool:
    """Wait until ``p`` is terminal or the clock reaches ``deadline``; whether it is.

    Sync mode and the watch use this. Poll counts do not apply here (a sync
    submit has no polls), so a polls:N prediction is terminal once its outcome
    is known.
    """
    while True:
        now = clock.now()
        if p.outcome_known and (p.polls_needed or p.follows_engine or now >= p.done_at):
            return True
        if is_terminal(status_at(p, now)):
            return True
        if now >= deadline:
            return False
        wake_at = min(deadline, max(p.done_at, now)) if p.outcome_known else deadline
        waits: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(clock.sleep_until(wake_at))
        ]
        if not p.outcome_known:
            waits.append(asyncio.ensure_future(renders.done_event(p.id).wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()


class TerminalWatch:
    """One task per watched prediction; the notifiers told once it ends."""

    def __init__(
        self,
        *,
        notifiers: Sequence[Notifier],
        clock: ServerClock,
        renders: RenderQueue,
        describe: Callable[[Prediction], dict[str, Any]],
        settled: Callable[[Prediction], None] = lambda p: None,
    ) -> None:
        """``describe``: a prediction's view as the API shows it (the webhook body);
        ``settled``: records that the notifiers are done with a prediction (the
        service stores ``notified_at``), so that a restart owes it nothing."""
        self.notifiers = tuple(notifiers)
        self.settled = settled
        self.clock = clock
        self.renders = renders
        self.describe = describe
        self.drain_s = NOTIFY_DRAIN_S
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._watched: dict[asyncio.Task[None], Prediction] = {}
        self._notifying: set[asyncio.Task[None]] = set()
        self._poll_signals: dict[str, asyncio.Event] = {}

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def wants(self, p: Prediction) -> bool:
        """Whether ``p`` is one to watch: it has a webhook and someone to tell."""
        return bool(p.webhook and self.notifiers)

    def watch(self, p: Prediction) -> None:
        """Tell the notifiers once ``p`` turns terminal."""
        loop = self._loop
        if loop is None:
            return
        task = loop.create_task(self._run(p))
        self._tasks[p.id] = task
        self._watched[task] = p
        task.add_done_callback(self._forget_task)

    def poll_answered(self, prediction_id: str) -> None:
        """A counted poll of ``prediction_id`` was answered (``polls:N``)."""
        signal = self._poll_signals.get(prediction_id)
        if signal is not None:
            signal.set()

    def forget(self, prediction_ids: Iterable[str]) -> None:
        """Retention removed these: their watches end (a delivery under way goes on)."""
        for pid in prediction_ids:
            task = self._tasks.pop(pid, None)
            if task is not None and task not in self._notifying:
                task.cancel()
            self._poll_signals.pop(pid, None)

    def unsettled(self, now: float) -> list[str]:
        """What is due by ``now`` and not yet done: notifications of ended predictions."""
        return [
            f"the notifications of {p.id}"
            for task, p in list(self._watched.items())
            if not task.done()
            and is_terminal(status_at(p, now))
            and not self.clock.waits_for_later(task)
        ]

    async def drain(self) -> None:
        """Stop: watches still waiting end; deliveries under way get ``drain_s``."""
        for task in set(self._tasks.values()) - self._notifying:
            task.cancel()  # still waiting for its task to end: nothing under way
        notifying = list(self._notifying)
        if not notifying:
            return
        _, pending = await asyncio.wait(notifying, timeout=self.drain_s)
        for task in pending:
            log.warning(
                "stopping: a webhook delivery still under way after %g s was cut",
                self.drain_s,
            )
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def close(self) -> None:
        """Stop at once."""
        for task in list(self._tasks.values()):
            task.cancel()

    async def _run(self, p: Prediction) -> None:
        await until_terminal(p, math.inf, clock=self.clock, renders=self.renders)
        while not is_terminal(status_at(p, self.clock.now())):
            # polls:N: terminal only once the Nth poll has been answered.
            signal = self._poll_signals.setdefault(p.id, asyncio.Event())
            await signal.wait()
            signal.clear()
        self._poll_signals.pop(p.id, None)
        view = self.describe(p)
        me = asyncio.current_task()
        assert me is not None  # _run always runs as a task
        self._notifying.add(me)
        try:
            for notifier in self.notifiers:
                try:
                    await notifier.notify(p, view)
                except Exception:
                    log.exception("notifier failed for %s", p.id)
            # Not reached when a stop cuts a delivery: the webhook stays owed.
            try:
                self.settled(p)
            except Exception:
                log.exception("could not record the notifications of %s", p.id)
        finally:
            self._notifying.discard(me)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        p = self._watched.pop(task, None)
        if p is not None and self._tasks.get(p.id) is task:
            del self._tasks[p.id]
