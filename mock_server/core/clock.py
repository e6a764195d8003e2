"""The server's one clock: everything that waits asks it for the time.

A :class:`RealClock` follows the wall clock. A :class:`VirtualClock` stands still
until it is told to move (``advance``, ``set``), so tests can step a prediction
through its lifecycle without sleeping. Async waiters (sync mode, webhook retries,
fault expiry) use ``sleep_until``, which a virtual clock wakes when it moves.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol

__all__ = ["Clock", "RealClock", "VirtualClock"]


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
