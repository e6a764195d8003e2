"""Scenarios: what goes wrong in production, reproducible from a seed.

A scenario is a small JSON object set through the control API (its fields are
in :mod:`.scenario` and docs/scenarios.md). Scenarios apply globally, per API
key, to the next N requests they touch, or per request (header
``X-Wavespeed-Mock-Scenario: <name>``), in that order of precedence from the
most specific. They expire after a time on the server's clock or a count.
Every random draw comes from the scenario's ``seed`` and the order of the
requests, so the same requests in the same order repeat exactly.
"""

from __future__ import annotations

import itertools
import math
import threading
import weakref
from collections import deque
from collections.abc import MutableMapping, Sequence
from typing import Any

from ...core.clock import ServerClock
from ...core.components import (
    FaultPlan,
    RouteCall,
    SubmitRequest,
    WireDecision,
)
from ...core.keys import key_id, mask_key
from ...core.lifecycle import is_terminal, status_at
from ...core.prediction import Prediction
from ...core.store import Store
from ...errors import ApiError
from ...settings import SCENARIO_HEADER
from .scenario import TASK_ERRORS, Scenario

__all__ = ["SCENARIO_HEADER", "TASK_ERRORS", "Scenario", "ScenarioBook"]

_NOTHING = WireDecision()


class ScenarioBook:
    """Where scenarios are kept and chosen: the service's fault source.

    Implements :class:`~...core.components.FaultSource`. A request's scenario is
    chosen once (most specific first): at the edge by :meth:`route_fault`, whose
    :class:`WireDecision` names it by its serial, which the submit hands back in
    ``SubmitRequest.decided``; :meth:`plan` turns it into a :class:`FaultPlan`
    (plain data: the serial, the key id, a held rate-limit slot), and
    :meth:`record` counts it once the task exists.
    """

    def __init__(self, *, clock: ServerClock, store: Store) -> None:
        self.clock = clock
        self.store = store
        self.global_: Scenario | None = None
        self.by_key: dict[str, Scenario] = {}
        """Scenarios by key id (``core.keys.key_id``): keys are never kept."""
        self._key_hints: dict[str, str] = {}
        self.next_n: deque[list[Any]] = deque()  # [scenario, remaining]
        self.named: dict[str, Scenario] = {}
        self.by_prediction: MutableMapping[str, Scenario] = {}
        """The scenario each task was made under (its polls keep it)."""
        self._starts: dict[str, deque[float]] = {}
        self._serials: weakref.WeakValueDictionary[int, Scenario] = (
            weakref.WeakValueDictionary()
        )
        """Every scenario still held anywhere, by the serial a decision names it by."""
        self._next_serial = itertools.count(1)
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.global_ = None
            self.by_key.clear()
            self._key_hints.clear()
            self.next_n.clear()
            self.named.clear()
            self.by_prediction.clear()
            self._starts.clear()

    def forget(self, prediction_ids: Sequence[str]) -> None:
        """Retention pruned these predictions: drop the scenarios they were made under."""
        with self._lock:
            for pid in prediction_ids:
                self.by_prediction.pop(pid, None)

    def add(self, body: dict[str, Any]) -> Scenario:
        scenario = Scenario.from_json(body)
        scenario.set_at = self.clock.now()
        scenario.serial = next(self._next_serial)
        self._serials[scenario.serial] = scenario
        scope = body.get("scope", "global")  # the schema checked the rest
        with self._lock:
            if scope == "key":
                self.by_key[key_id(body["api_key"])] = scenario
                self._key_hints[key_id(body["api_key"])] = mask_key(body["api_key"])
            elif scope == "next":
                self.next_n.append([scenario, body["count"]])
            elif scope == "named":
                self.named[scenario.name] = scenario
            else:
                self.global_ = scenario
        return scenario

    def choose(self, request: SubmitRequest) -> Scenario | None:
        """The scenario for one submit, most specific first (named, next, key, global)."""
        return self._choose(
            "submit", request.scenario, key_id(request.api_key), None, request.model.id
        )

    def _choose(
        self,
        route: str,
        name: str | None,
        key: str | None,
        prediction: Prediction | None,
        model: str | None = None,
    ) -> Scenario | None:
        """``key``: the request's key id (``core.keys.key_id``), if it has one;
        ``model``: the model a submit names (a poll's is its prediction's)."""
        if prediction is not None:
            model = prediction.model
        now = self.clock.now()
        with self._lock:
            if name:
                scenario = self.named.get(name)
                if scenario is None:
                    raise ApiError(
                        400,
                        f"Unknown scenario {name!r} in {SCENARIO_HEADER}; "
                        "set it first with scope 'named'",
                    )
                if scenario.expired(now) or not scenario.applies_to(model):
                    return None
                return scenario
            self._drop_expired(now)
            for entry in self.next_n:
                if entry[0].touches(route) and entry[0].applies_to(model):
                    found: Scenario = entry[0]
                    return found
            if prediction is not None:
                created_under = self.by_prediction.get(prediction.id)
                if created_under is not None:
                    return created_under
                key = key or prediction.key_id
            return self._ambient(key or "", now, model)

    def _drop_expired(self, now: float) -> None:
        while self.next_n and self.next_n[0][0].expired(now):
            self.next_n.popleft()

    def _use(self, scenario: Scenario) -> None:
        """Count one use of ``scenario``; a next-N entry runs down by one."""
        for entry in self.next_n:
            if entry[0] is scenario:
                if entry[1] <= 1:
                    self.next_n.remove(entry)
                else:
                    entry[1] -= 1
                break
        scenario.uses += 1

    def _ambient(self, key: str, now: float, model: str | None) -> Scenario | None:
        keyed = self.by_key.get(key)
        if keyed is not None and not keyed.expired(now) and keyed.applies_to(model):
            return keyed
        chosen = self.global_
        if chosen is not None and not chosen.expired(now) and chosen.applies_to(model):
            return chosen
        return None

    def state(self) -> dict[str, Any]:
        return {
            "global": self.global_.as_json() if self.global_ else None,
            "keys": {self._key_hints[k]: s.as_json() for k, s in self.by_key.items()},
            "next": [{"count": n, **s.as_json()} for s, n in self.next_n],
            "named": {k: s.as_json() for k, s in self.named.items()},
        }

    # -- the fault source ------------------------------------------------------------

    def plan(self, request: SubmitRequest) -> FaultPlan | None:
        """The fault for this submit; 429 when the scenario's rate limit is reached.

        The scenario is the one the edge chose (``request.decided``); only a
        submit that did not come through the wire layer is chosen for here.
        """
        decided = request.decided
        if decided is None:
            scenario = self.choose(request)
        elif decided.scenario is None:
            scenario = None
        else:  # None if it was cleared meanwhile
            scenario = self._serials.get(decided.scenario)
        if scenario is None:
            return None
        key = key_id(request.api_key)
        reserved_at = (
            self._rate_limit(scenario, key) if scenario.per_minute is not None else None
        )
        delay = scenario.latency_s() if scenario.latency else 0.0
        failure_code = 0
        failure_message = ""
        if scenario.status is not None:
            failure_message = f"Prediction {scenario.status} by the mock's scenario"
        elif scenario.fail_code is not None:
            failure_code = scenario.fail_code
            failure_message = scenario.fail_message or TASK_ERRORS.get(
                scenario.fail_code, "The task execution failed."
            )
        return FaultPlan(
            name=scenario.name or "unnamed",
            submit_delay_s=delay,
            queue_shift_s=float(scenario.queue_s),
            slot_free_at=self._slot_free_at(scenario, key),
            forced_status=scenario.status,
            failure_code=failure_code,
            failure_message=failure_message,
            nsfw=scenario.nsfw,
            sync_timeout=scenario.sync_timeout,
            sync_gateway_timeout=scenario.sync_gateway_timeout,
            error_body=scenario.error_body or "html",
            scenario=scenario.serial,
            key_id=key,
            reserved_at=reserved_at,
        )

    def record(self, plan: FaultPlan, p: Prediction) -> None:
        """Count the scenario behind ``plan`` once its task exists."""
        scenario = self._serials.get(plan.scenario)
        if scenario is None:  # cleared while the submit ran
            return
        with self._lock:
            self._use(scenario)
            self.by_prediction[p.id] = scenario

    def abandon(self, plan: FaultPlan) -> None:
        """The submit ``plan`` was made for was refused later: free its rate-limit slot."""
        if plan.reserved_at is None:
            return
        with self._lock:
            window = self._starts.get(plan.key_id)
            if window is not None and plan.reserved_at in window:
                window.remove(plan.reserved_at)

    def _rate_limit(self, scenario: Scenario, key: str) -> float:
        """Reserve a start in the key's minute window (429 when it is full)."""
        now = self.clock.now()
        with self._lock:
            window = self._starts.setdefault(key, deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= int(scenario.per_minute or 0):
                retry_after = max(1, math.ceil(window[0] + 60.0 - now))
                raise ApiError(
                    429,
                    f"Rate limit exceeded: at most {scenario.per_minute} generations per minute "
                    f"for this account level. Retry after {retry_after} s.",
                    headers={"Retry-After": str(retry_after)},
                )
            window.append(now)
            return now

    def _slot_free_at(self, scenario: Scenario, key: str) -> float | None:
        """When a concurrency slot frees for a new task of key id ``key`` (None: one is free)."""
        cap = scenario.concurrency
        if cap is None:
            return None
        now = self.clock.now()
        busy = sorted(
            q.done_at
            for q in self.store.all()
            if q.key_id == key
            and q.done_at > now
            and not q.polls_needed
            and not q.follows_engine
            and not is_terminal(status_at(q, now))
        )
        if len(busy) < cap:
            return None
        return busy[len(busy) - cap]

    async def on_poll(self, p: Prediction) -> None:
        seconds, status = self.poll_fault(p)
        if seconds > 0:
            await self.clock.sleep_until(self.clock.now() + seconds)
        if status:
            raise ApiError(
                status,
                f"Injected by the mock's scenario: HTTP {status} on a result poll",
            )

    def poll_fault(self, p: Prediction) -> tuple[float, int]:
        """What a scenario does to a poll of ``p``: seconds of latency, and the
        HTTP status of an injected error (0: none)."""
        scenario = self.by_prediction.get(p.id) or self._ambient(
            p.key_id, self.clock.now(), p.model
        )
        if scenario is None:
            return 0.0, 0
        with self._lock:
            seconds = scenario.latency_s() if scenario.latency else 0.0
            status = 0
            if scenario.poll_error_rate:
                rng = scenario.draw("poll")
                if rng.random() < scenario.poll_error_rate:
                    status = rng.choice(list(scenario.poll_error_statuses))
        return seconds, status

    def idle(self) -> bool:
        """True while no scenario is set: the wire layer then does nothing."""
        return not (
            self.global_
            or self.by_key
            or self.next_n
            or self.named
            or self.by_prediction
        )

    def route_fault(self, call: RouteCall) -> WireDecision:
        """The one decision about a request: its scenario, and what happens on the
        wire (see :meth:`Scenario.wire_fault`).

        A fault that answers in place of the app, or that cuts a request other
        than a submit, counts a use here; a submit's task counts in :meth:`record`.
        """
        prediction = call.prediction  # read once, at the edge
        key = key_id(call.api_key) if call.api_key else None
        scenario = self._choose(call.route, call.scenario, key, prediction, call.model)
        if scenario is None:
            return _NOTHING
        chosen = WireDecision(scenario=scenario.serial)
        if (
            call.route == "output"
            and scenario.output_ttl_s is not None
            and prediction is not None
            and self.clock.now() >= prediction.created_at + scenario.output_ttl_s
        ):
            return WireDecision(scenario.expired_output(), scenario.serial)
        fault = scenario.wire_fault(call.route)
        if fault is None:
            return chosen
        chosen_for_this_request = (
            prediction is None or self.by_prediction.get(prediction.id) is not scenario
        )
        if chosen_for_this_request and (
            call.route != "submit" or fault.kind == "answer"
        ):
            with self._lock:
                self._use(scenario)
        return WireDecision(fault, scenario.serial)

    def timestamp_digits(self, p: Prediction) -> int | None:
        if not (self.global_ or self.by_key or self.by_prediction):
            return None
        scenario = self.by_prediction.get(p.id) or self._ambient(
            p.key_id, self.clock.now(), p.model
        )
        if scenario is None or scenario.timestamp_digits is None:
            return None
        with self._lock:
            return scenario.created_at_digits()
