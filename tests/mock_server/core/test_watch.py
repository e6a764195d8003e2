"""The terminal watch on its own: notifiers told once, forgotten, drained."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from wavespeed_mock.mock_server.core.clock import ServerClock
from wavespeed_mock.mock_server.core.prediction import Prediction
from wavespeed_mock.mock_server.core.watch import TerminalWatch


class Renders:
    """Renders that have all finished (the watch waits on the clock only)."""

    def done_event(self, prediction_id: str) -> asyncio.Event:
        done = asyncio.Event()
        done.set()
        return done


class Notifier:
    def __init__(self, hold: asyncio.Event | None = None) -> None:
        self.told: list[tuple[str, str]] = []
        self.hold = hold

    async def notify(self, p: Prediction, view: dict[str, Any]) -> None:
        if self.hold is not None:
            await self.hold.wait()
        self.told.append((p.id, view["status"]))

    def reset(self) -> None: ...


def prediction(pid: str, done_at: float) -> Prediction:
    return Prediction(
        id=pid, model="m", input={}, seed_requested=1, seed=1, created_at=0.0,
        profile="fast", start_at=0.0, done_at=done_at, webhook="http://127.0.0.1/h",
        rendered_at=0.0,
    )  # fmt: skip


def watch_with(
    notifier: Notifier, clock: ServerClock, settled: list[str] | None = None
) -> TerminalWatch:
    watch = TerminalWatch(
        notifiers=[notifier],
        clock=clock,
        renders=Renders(),  # type: ignore[arg-type]
        describe=lambda p: {"id": p.id, "status": "completed"},
        settled=lambda p: (settled if settled is not None else []).append(p.id),
    )
    watch.attach(asyncio.get_running_loop())
    return watch


async def settle(watch: TerminalWatch, now: float) -> None:
    deadline = time.monotonic() + 30  # a bound for a busy machine, not a timing
    while watch.unsettled(now):
        assert time.monotonic() < deadline, watch.unsettled(now)
        await asyncio.sleep(0.001)


def test_the_notifiers_are_told_once_the_prediction_ends() -> None:
    async def run() -> None:
        clock = ServerClock(virtual=True, start=0.0)
        notifier = Notifier()
        watch = watch_with(notifier, clock)
        p = prediction("p1", done_at=10.0)
        watch.watch(p)
        await asyncio.sleep(0.01)
        assert notifier.told == []  # not terminal before its time
        clock.advance(10.0)
        await settle(watch, clock.now())
        await asyncio.sleep(0.01)
        assert notifier.told == [("p1", "completed")]

    asyncio.run(run())


def test_a_forgotten_prediction_is_never_told() -> None:
    async def run() -> None:
        clock = ServerClock(virtual=True, start=0.0)
        notifier = Notifier()
        watch = watch_with(notifier, clock)
        watch.watch(prediction("p1", done_at=10.0))
        await asyncio.sleep(0)
        watch.forget(["p1"])
        clock.advance(20.0)
        await asyncio.sleep(0.05)
        assert notifier.told == []
        assert watch.unsettled(clock.now()) == []

    asyncio.run(run())


def test_a_stop_cuts_a_delivery_still_under_way_after_the_drain() -> None:
    async def run() -> None:
        clock = ServerClock(virtual=True, start=0.0)
        notifier = Notifier(hold=asyncio.Event())  # a receiver that never answers
        settled: list[str] = []
        watch = watch_with(notifier, clock, settled)
        watch.drain_s = 0.01
        watch.watch(prediction("p1", done_at=0.0))
        watch.watch(prediction("p2", done_at=99.0))  # still waiting: cancelled at once
        deadline = time.monotonic() + 30  # a bound, not a timing
        while not watch._notifying:
            assert time.monotonic() < deadline, "the delivery never started"
            await asyncio.sleep(0.001)
        await asyncio.wait_for(watch.drain(), 30)
        assert notifier.told == [] and not watch._tasks
        assert settled == []  # both still owed: a restart sends them

    asyncio.run(run())


def test_a_prediction_is_settled_once_its_notifiers_are_done() -> None:
    async def run() -> None:
        clock = ServerClock(virtual=True, start=0.0)
        settled: list[str] = []
        notifier = Notifier()
        watch = watch_with(notifier, clock, settled)
        watch.watch(prediction("p1", done_at=0.0))
        deadline = time.monotonic() + 30  # a bound, not a timing
        while not settled:
            assert time.monotonic() < deadline, "never settled"
            await asyncio.sleep(0.001)
        assert notifier.told == [("p1", "completed")] and settled == ["p1"]

    asyncio.run(run())
