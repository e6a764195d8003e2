"""The shared clock and profile (issue 23) without a database: two processes'
:class:`SharedTime` over one in-memory stand-in for the shared store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from wavespeed_mock.mock_server.core.clock import ServerClock
from wavespeed_mock.mock_server.core.profiles import TimingProfile, parse_profile
from wavespeed_mock.mock_server.core.shared_time import TIME_KEY, SharedTime


class OneDatabase:
    """What several processes' stores share: published values, versioned."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[int, str]] = {}
        self.version = 0


class FakeSharedStore:
    """One process's view of :class:`OneDatabase`; notifications are delivered
    only when ``deliver`` is called (a poll's read is ``refresh``)."""

    def __init__(self, db: OneDatabase) -> None:
        self.db = db
        self.followers: dict[str, Callable[[str], None]] = {}
        self.seen: dict[str, int] = {}

    def publish(self, key: str, value: str) -> None:
        self.db.version += 1
        self.db.values[key] = (self.db.version, value)
        self.seen[key] = self.db.version

    def follow(self, key: str, callback: Callable[[str], None]) -> None:
        self.followers[key] = callback
        self.refresh()

    def refresh(self) -> None:
        for key, callback in self.followers.items():
            if key in self.db.values:
                version, value = self.db.values[key]
                if version > self.seen.get(key, 0):
                    self.seen[key] = version
                    callback(value)


@dataclass
class Holder:
    profile: TimingProfile = field(default_factory=lambda: parse_profile("instant"))


def process(db: OneDatabase) -> tuple[ServerClock, Holder, SharedTime]:
    clock, holder = ServerClock(), Holder()
    shared = SharedTime(clock, holder, FakeSharedStore(db))
    shared.start()
    return clock, holder, shared


def test_a_frozen_clock_and_its_moves_reach_the_other_process() -> None:
    db = OneDatabase()
    clock_a, _, time_a = process(db)
    clock_b, _, time_b = process(db)

    clock_a.freeze()
    clock_a.advance(3600)
    time_a.publish()
    assert not clock_b.virtual  # nothing read yet
    time_b.refresh()

    assert clock_b.virtual and clock_b.now() == clock_a.now()
    clock_a.advance(60)
    time_a.publish()
    time_b.refresh()
    assert clock_b.now() == clock_a.now()


def test_unfreezing_returns_the_other_process_to_the_same_shifted_wall_clock() -> None:
    db = OneDatabase()
    clock_a, _, time_a = process(db)
    clock_b, _, time_b = process(db)
    clock_a.freeze()
    clock_a.advance(86_400)  # a day ahead
    time_a.publish()
    time_b.refresh()

    clock_a.unfreeze()
    time_a.publish()
    time_b.refresh()

    assert not clock_b.virtual
    assert clock_b.shared() == clock_a.shared()  # the same offset
    assert clock_b.now() == pytest.approx(clock_a.now(), abs=5.0)


def test_a_process_that_starts_later_takes_the_published_time_and_profile() -> None:
    db = OneDatabase()
    clock_a, holder_a, time_a = process(db)
    clock_a.freeze()
    holder_a.profile = parse_profile("realistic")
    time_a.publish()

    clock_c, holder_c, _ = process(db)  # start() reads what is there

    assert clock_c.virtual and clock_c.now() == clock_a.now()
    assert holder_c.profile.name == "realistic"


def test_a_stale_state_never_moves_a_frozen_clock_back() -> None:
    clock = ServerClock()
    clock.freeze()
    clock.advance(100)
    later = clock.now()
    clock.adopt({"virtual": True, "now": later - 50})
    assert clock.now() == later


def test_an_unreadable_published_time_is_ignored_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = OneDatabase()
    clock, holder, shared = process(db)
    db.version += 1
    db.values[TIME_KEY] = (db.version, '{"virtual": true, "profile": "bogus"}')
    shared.refresh()
    assert not clock.virtual and holder.profile.name == "instant"
    assert "cannot read" in caplog.text


def test_an_adopted_clock_wakes_this_process_sleepers() -> None:
    """A sleeper (a webhook retry, a sync wait) on a frozen clock wakes when
    another process's advance is adopted."""
    db = OneDatabase()
    clock_a, _, time_a = process(db)
    clock_b, _, time_b = process(db)
    clock_a.freeze()
    time_a.publish()
    time_b.refresh()

    async def scenario() -> None:
        sleeper = asyncio.create_task(clock_b.sleep_until(clock_b.now() + 30))
        await asyncio.sleep(0)
        assert not sleeper.done()
        clock_a.advance(31)
        time_a.publish()
        time_b.refresh()
        await asyncio.wait_for(sleeper, timeout=30)  # a bound, not a timing

    asyncio.run(scenario())
