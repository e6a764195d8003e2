"""The server's one clock: everything that waits asks it for the time.

A :class:`RealClock` follows the wall clock. A :class:`VirtualClock` stands still
until it is told to move (``advance``, ``set``), so tests can step a prediction
through its lifecycle without sleeping. Async waiters (sync mode, webhook retries,
fault expiry) use ``sleep_until``, which a virtual clock wakes when it moves.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any, Protocol

from ...contracts.errors import WavespeedMockError

__all__ = [
    "LATEST_TIME",
    "Clock",
    "ClockError",
    "RealClock",
    "ServerClock",
    "VirtualClock",
]

LATEST_TIME = 32_503_680_000.0
"""3000-01-01T00:00:00Z: a virtual clock stops here. Every timestamp the server
writes (RFC 3339, four-digit years) must stay formattable after the offsets it
adds to the clock (schedules, retries, waits); the control contract
(``mock-control.yaml``, ``/_mock/clock``) documents the same bound, and the
control API refuses larger ``advance`` and ``set`` values."""


class Clock(Protocol):
    virtual: bool

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline``."""
        ...


class RealClock:
    """The wall clock, optionally shifted by ``offset`` seconds.

    The offset lets a server switch back from a virtual clock that was advanced
    without time going backwards.
    """

    virtual = False

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - self.now()
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock:
    """A clock that moves only when told to.

    Starts at the wall-clock time of its creation (or ``start``), so timestamps
    stay plausible.
    """

    virtual = True

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (never backwards) and wake due waiters."""
        if seconds < 0:
            raise ValueError(f"a clock never goes backwards; got advance({seconds!r})")
        return self.set(self._now + seconds)

    def set(self, when: float) -> float:
        with self._lock:
            self._now = max(self._now, when)
            due = [w for w in self._waiters if w[0] <= self._now]
            self._waiters = [w for w in self._waiters if w[0] > self._now]
        for _, future in due:
            loop = future.get_loop()
            loop.call_soon_threadsafe(_resolve, future)
        return self._now

    async def sleep_until(self, deadline: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if deadline <= self._now:
                return
            self._waiters.append((deadline, future))
        try:
            await future
        finally:
            with self._lock:
                self._waiters = [w for w in self._waiters if w[1] is not future]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ServerClock:
    """The one clock of a server: real or virtual, switchable while it runs.

    Everything that waits or stamps times holds this object, so switching
    between the wall clock and a frozen virtual clock (the control API's
    ``/_mock/clock``) reaches every part at once. Switching never moves time
    backwards.
    """

    def __init__(self, *, virtual: bool = False, start: float | None = None) -> None:
        self._current: RealClock | VirtualClock = (
            VirtualClock(start) if virtual else RealClock()
        )
        self._sleepers: dict[asyncio.Task[Any], float] = {}

    @property
    def virtual(self) -> bool:
        return self._current.virtual

    def now(self) -> float:
        return self._current.now()

    async def sleep_until(self, deadline: float) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._sleepers[task] = deadline
        try:
            while True:
                clock = self._current
                await clock.sleep_until(deadline)
                if self._current is clock or self.now() >= deadline:
                    return  # else the clock was switched under us: wait on the new one
        finally:
            if task is not None:
                self._sleepers.pop(task, None)

    def waits_for_later(self, task: asyncio.Task[Any]) -> bool:
        """Whether ``task`` sleeps on this clock until a time still to come."""
        deadline = self._sleepers.get(task)
        return deadline is not None and deadline > self.now()

    def freeze(self) -> VirtualClock:
        """Stand still at the present time; only :meth:`advance` and :meth:`set` move it."""
        if not isinstance(self._current, VirtualClock):
            self._current = VirtualClock(start=self._current.now())
        return self._current

    def unfreeze(self) -> None:
        """Back to the wall clock, shifted so that time never goes backwards."""
        current = self._current
        if isinstance(current, VirtualClock):
            now = current.now()
            self._current = RealClock(offset=max(0.0, now - RealClock().now()))
            current.set(
                math.inf
            )  # wake its sleepers; they wait again on the wall clock

    def shared(self) -> dict[str, Any]:
        """What another process needs to keep the same time (:meth:`adopt`): a
        frozen clock's time, or the wall clock's offset."""
        current = self._current
        if isinstance(current, VirtualClock):
            return {"virtual": True, "now": current.now()}
        return {"virtual": False, "offset": current.offset}

    def adopt(self, state: dict[str, Any]) -> None:
        """Keep the time another process published (:meth:`shared`): frozen at its
        ``now``, or the wall clock shifted by its ``offset``. Safe from any thread.

        Processes that share a database share one clock, so the published time is
        taken as it is; it may be a few milliseconds behind this process's wall
        clock at the moment another process froze it."""
        current = self._current
        if state.get("virtual"):
            now = float(state["now"])
            if isinstance(current, VirtualClock):
                current.set(now)  # never backwards: a stale state changes nothing
            else:
                self._current = VirtualClock(start=now)
            return
        offset = float(state.get("offset", 0.0))
        if isinstance(current, RealClock) and current.offset == offset:
            return
        self._current = RealClock(offset=offset)
        if isinstance(current, VirtualClock):
            current.set(math.inf)  # its sleepers wait again on the wall clock

    def advance(self, seconds: float) -> float:
        """Move a frozen clock forward, stopping at :data:`LATEST_TIME`."""
        clock = self._frozen("advance")
        if seconds < 0:
            raise ValueError(f"a clock never goes backwards; got advance({seconds!r})")
        return clock.set(min(clock.now() + seconds, LATEST_TIME))

    def set(self, when: float) -> float:
        """Move a frozen clock to ``when`` (never backwards, never past
        :data:`LATEST_TIME`)."""
        return self._frozen("set").set(min(when, LATEST_TIME))

    def _frozen(self, action: str) -> VirtualClock:
        if not isinstance(self._current, VirtualClock):
            raise ClockError(
                f"Cannot {action} the real clock; freeze it first "
                '(POST /_mock/clock {"virtual": true})'
            )
        return self._current


class ClockError(WavespeedMockError, RuntimeError):
    """A clock asked to do what its kind cannot (moving the wall clock)."""
