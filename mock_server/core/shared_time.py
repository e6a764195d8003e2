"""One clock and one timing profile for every process on one database.

With ``--database postgresql://…`` several processes answer as one mock, so a
test that freezes and advances the clock, or switches the timing profile,
through one of them must see every other follow: a task polled anywhere is in
the state the shared clock says. :class:`SharedTime` publishes this process's
clock and profile to the store when the control API changes them, and adopts
what another process published: at every poll (the poll's query reads the
published time with the row, so a clock moved through one process before a
poll through another is always seen), before each submit is scheduled, and
when the database notifies a change (so sleepers, such as webhook retries and
sync-mode waits, wake too).

The embedded SQLite store serves one process and shares nothing: the server
builds no :class:`SharedTime` for it, and a restart starts from the settings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from .clock import ServerClock
from .profiles import ProfileError, TimingProfile, parse_profile

__all__ = ["TIME_KEY", "SharedStore", "SharedTime"]

log = logging.getLogger("wavespeed_mock")

TIME_KEY = "shared:time"
"""The store's small value that holds the published clock and profile."""


class SharedStore(Protocol):
    """A store shared by several processes (``PostgresStore``)."""

    def publish(self, key: str, value: str) -> None:
        """Set ``key`` and tell every process that follows it."""
        ...

    def follow(self, key: str, callback: Callable[[str], None]) -> None:
        """Call ``callback`` with ``key``'s value now and whenever a newer one is
        seen (read with a poll's row, or notified), from any thread."""
        ...

    def refresh(self) -> None:
        """Read every followed key now and hand on what is newer."""
        ...


class Profiled(Protocol):
    """What holds the timing profile (the service)."""

    profile: TimingProfile


class SharedTime:
    """This process's clock and profile, kept the same as every other's."""

    def __init__(
        self, clock: ServerClock, holder: Profiled, store: SharedStore
    ) -> None:
        self.clock = clock
        self.holder = holder
        self.store = store

    def start(self) -> None:
        """Take the time already published (a process joining a running mock),
        and follow later changes."""
        self.store.follow(TIME_KEY, self.adopt)

    def refresh(self) -> None:
        """Read the published time now (before a submit is scheduled on it)."""
        self.store.refresh()

    def publish(self) -> None:
        """Tell the other processes this process's clock and profile (after the
        control API changed either)."""
        state = {**self.clock.shared(), "profile": self.holder.profile.name}
        self.store.publish(TIME_KEY, json.dumps(state, separators=(",", ":")))

    def adopt(self, value: str) -> None:
        """Keep the clock and profile another process published."""
        try:  # all read before anything changes: none of it, or all of it
            state: dict[str, Any] = json.loads(value)
            virtual = state["virtual"]
            if not isinstance(virtual, bool):
                raise TypeError(f"virtual is {virtual!r}")
            clock = (
                {"virtual": True, "now": float(state["now"])}
                if virtual
                else {"virtual": False, "offset": float(state.get("offset", 0.0))}
            )
            name = str(state.get("profile", self.holder.profile.name))
            profile = (
                self.holder.profile
                if name == self.holder.profile.name
                else parse_profile(name)
            )
        except (ValueError, KeyError, TypeError, ProfileError) as exc:
            # Written by a newer or broken process: keep this process's time.
            log.error("ignoring a shared clock this server cannot read: %s", exc)
            return
        self.clock.adopt(clock)
        self.holder.profile = profile
