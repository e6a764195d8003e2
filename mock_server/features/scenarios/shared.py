"""Scenarios shared by every process on one database (``--database``).

:class:`SharedScenarioBook` is the :class:`ScenarioBook` whose state lives in
the shared store: a scenario set through any process applies to requests that
reach any other, and everything that counts is counted across them (a ``next``
scenario's requests left, ``uses`` and ``expires_after_count``, the seeded
draws, the ``per_minute`` windows). The book's state is one JSON document in
the store's small values (:data:`BOOK_KEY`); each decision loads it under a row
lock (:meth:`ScenarioStore.locked_value`), runs the book's own logic, and
writes back what changed in the same transaction, so two processes never
decide from the same count. The scenario a task was made under is kept per
task (``scenario-pin:<id>``), so its polls keep it through any process.

Only a set book costs anything: while no scenario is set, every process knows
it without asking (a published change, :data:`CHANGED_KEY`, tells it when one
is; a poll's query and a submit's refresh read it too), so requests pay nothing.
A scenario set through one process applies to another's decisions from the
moment the change reaches it: at once for submits and result polls, which read
the published values first; within the notification's delay (well under a
millisecond on one host) for what the wire layer decides before any read.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from ...core.clock import ServerClock
from ...core.components import FaultPlan, RouteCall, SubmitRequest, WireDecision
from ...core.prediction import Prediction
from ...core.store import Store
from .book import ScenarioBook
from .scenario import _WHERE, Scenario

__all__ = ["BOOK_KEY", "CHANGED_KEY", "ScenarioStore", "SharedScenarioBook"]

BOOK_KEY = "scenarios:book"
"""The small value holding the book's state (JSON)."""
CHANGED_KEY = "scenarios"
"""The published key whose new versions say the book changed."""
PIN = "scenario-pin:"
"""The small values' prefix of the scenario each task was made under."""


class ScenarioStore(Protocol):
    """What the shared book needs of the shared store (``PostgresStore``)."""

    def locked_value(
        self, key: str
    ) -> AbstractContextManager[tuple[str | None, Callable[[str], None]]]: ...
    def get_value(self, key: str) -> str | None: ...
    def set_value(self, key: str, value: str) -> None: ...
    def values(self, prefix: str) -> list[tuple[str, str]]: ...
    def delete_values(self, keys: Sequence[str]) -> None: ...
    def publish(self, key: str, value: str) -> None: ...
    def follow(self, key: str, callback: Callable[[str], None]) -> None: ...


class SharedScenarioBook(ScenarioBook):
    """The scenario book kept in the shared store (see the module doc)."""

    def __init__(self, *, clock: ServerClock, store: Store, shared: ScenarioStore):
        super().__init__(clock=clock, store=store)
        self.shared = shared
        self.by_prediction = _Pins(self)
        self._known: dict[int, Scenario] = {}
        """Every scenario of the loaded state, by serial (the same objects from
        one load to the next, as decisions name them by serial)."""
        self._next = 1
        self._any = False
        """Whether the loaded state has any scenario (else the book is idle)."""
        self._stale = True
        self._inside = threading.local()
        shared.follow(CHANGED_KEY, self._changed)

    # -- the shared state ------------------------------------------------------------

    def _changed(self, value: str) -> None:
        self._stale = True

    @contextmanager
    def _decision(self) -> Iterator[None]:
        """Run the block on the newest state, under its lock; keep what it changed."""
        if getattr(self._inside, "depth", 0):  # an entry point called by another
            yield
            return
        self._inside.depth = 1
        try:
            with self.shared.locked_value(BOOK_KEY) as (text, write):
                self._load(text)
                yield
                after = self._dump()
                changed = after != (text or "")
                if changed:
                    write(after)
            if changed:
                self.shared.publish(CHANGED_KEY, str(self._next))
        finally:
            self._inside.depth = 0

    def _load(self, text: str | None) -> None:
        doc: dict[str, Any] = json.loads(text) if text else {}
        known: dict[int, Scenario] = {}
        for serial_text, entry in doc.get("scenarios", {}).items():
            serial = int(serial_text)
            scenario = self._known.get(serial)
            if scenario is None:
                scenario = Scenario.from_json(entry["body"])
                scenario.serial = serial
                self._serials[serial] = scenario
            scenario.set_at = float(entry["set_at"])
            scenario.uses = int(entry["uses"])
            scenario.draws = {k: int(v) for k, v in entry["draws"].items()}
            known[serial] = scenario
        self._known = known
        self._next = int(doc.get("next", 1))
        with self._lock:
            self.global_ = known.get(doc.get("global") or 0)
            self.by_key = {k: known[s] for k, s in doc.get("keys", {}).items()}
            self._key_hints = dict(doc.get("hints", {}))
            self.next_n = deque([known[s], n] for s, n in doc.get("queue", []))
            self.named = {k: known[s] for k, s in doc.get("named", {}).items()}
            self._starts = {k: deque(v) for k, v in doc.get("starts", {}).items()}
        self._any = bool(known)
        self._stale = False

    def _dump(self) -> str:
        with self._lock:
            in_force = [
                *([self.global_] if self.global_ is not None else []),
                *self.by_key.values(),
                *(s for s, _ in self.next_n),
                *self.named.values(),
            ]
            # Kept while a task made under it may still be polled: until a reset.
            kept = {s.serial: s for s in (*self._known.values(), *in_force)}
            doc = {
                "next": self._next,
                "scenarios": {
                    str(serial): {
                        "body": _body_of(s),
                        "set_at": s.set_at,
                        "uses": s.uses,
                        "draws": s.draws,
                    }
                    for serial, s in sorted(kept.items())
                },
                "global": self.global_.serial if self.global_ else None,
                "keys": {k: s.serial for k, s in self.by_key.items()},
                "hints": self._key_hints,
                "queue": [[s.serial, n] for s, n in self.next_n],
                "named": {k: s.serial for k, s in self.named.items()},
                "starts": {k: list(v) for k, v in self._starts.items() if v},
            }
        self._known = kept
        self._any = bool(kept)
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    def scenario_of(self, serial: int) -> Scenario | None:
        """A scenario of the loaded state by serial (a pin names it so)."""
        return self._known.get(serial)

    # -- the book's entry points, each on the newest state ---------------------------

    def add(self, body: dict[str, Any]) -> Scenario:
        with self._decision():
            scenario = super().add(body)
            # The serial counts across processes: the shared state's, not ours.
            del self._serials[scenario.serial]
            scenario.serial, self._next = self._next, self._next + 1
            self._serials[scenario.serial] = scenario
            self._known[scenario.serial] = scenario
            return scenario

    def reset(self) -> None:
        with self._decision():
            super().reset()
            self._known = {}
        self.by_prediction.clear()

    def forget(self, prediction_ids: Sequence[str]) -> None:
        self.shared.delete_values([PIN + pid for pid in prediction_ids])

    def choose(self, request: SubmitRequest) -> Scenario | None:
        with self._decision():
            return super().choose(request)

    def plan(self, request: SubmitRequest) -> FaultPlan | None:
        with self._decision():
            return super().plan(request)

    def record(self, plan: FaultPlan, p: Prediction) -> None:
        with self._decision():
            super().record(plan, p)

    def abandon(self, plan: FaultPlan) -> None:
        with self._decision():
            super().abandon(plan)

    def poll_fault(self, p: Prediction) -> tuple[float, int]:
        if self.idle():
            return 0.0, 0
        with self._decision():
            return super().poll_fault(p)

    def route_fault(self, call: RouteCall) -> WireDecision:
        with self._decision():
            return super().route_fault(call)

    def timestamp_digits(self, p: Prediction) -> int | None:
        if self.idle():
            return None
        with self._decision():
            return super().timestamp_digits(p)

    def state(self) -> dict[str, Any]:
        with self._decision():
            return super().state()

    def idle(self) -> bool:
        if self._stale:  # a change was published: read the state (no lock)
            self._load(self.shared.get_value(BOOK_KEY))
        return not self._any


class _Pins(MutableMapping[str, Scenario]):
    """The scenario each task was made under, kept in the shared store."""

    def __init__(self, book: SharedScenarioBook) -> None:
        self.book = book

    def __getitem__(self, prediction_id: str) -> Scenario:
        serial = self.book.shared.get_value(PIN + prediction_id)
        scenario = None if serial is None else self.book.scenario_of(int(serial))
        if scenario is None:
            raise KeyError(prediction_id)
        return scenario

    def __setitem__(self, prediction_id: str, scenario: Scenario) -> None:
        self.book.shared.set_value(PIN + prediction_id, str(scenario.serial))

    def __delitem__(self, prediction_id: str) -> None:
        self.book.shared.delete_values([PIN + prediction_id])

    def __iter__(self) -> Iterator[str]:
        return iter([k[len(PIN) :] for k, _ in self.book.shared.values(PIN)])

    def __len__(self) -> int:
        return len(self.book.shared.values(PIN))

    def __bool__(self) -> bool:
        # A task can be pinned only to a scenario of the state: none, no pins
        # that matter (a reset deletes them).
        return bool(self.book._known)

    def clear(self) -> None:
        self.book.shared.delete_values([k for k, _ in self.book.shared.values(PIN)])


def _body_of(scenario: Scenario) -> dict[str, Any]:
    """The scenario as :meth:`Scenario.from_json` takes it again: its fields
    (the scope's, such as an API key, are the book's, never kept here)."""
    shown = scenario.as_json()
    del shown["uses"]
    return {k: v for k, v in shown.items() if k not in _WHERE and v != _DEFAULTS[k]}


_DEFAULTS = Scenario.from_json({}).as_json()
