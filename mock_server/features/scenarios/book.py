"""Scenarios: what goes wrong in production, reproducible from a seed.

A scenario is a small JSON object set through the control API. It can fail a
task with one of the API's task error codes, end it ``cancelled`` or
``timeout``, flag it NSFW, slow its queue, force a sync-mode timeout, answer a
share of result polls with 500/502/503, add latency, or impose an account's
limits (generations per minute, answered 429 with ``Retry-After``, and a
concurrency cap under which extra tasks wait in ``created``). Scenarios apply
globally, per API key, to the next N tasks, or per request (header
``X-Wavespeed-Mock-Scenario: <name>``), in that order of precedence from the
most specific. They expire after a time on the server's clock or a count.
Every random draw comes from the scenario's ``seed`` and the prediction id, so
a run repeats exactly.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...core.clock import ServerClock
from ...core.components import FaultPlan, SubmitRequest
from ...core.lifecycle import is_terminal, status_at
from ...core.prediction import Prediction
from ...core.store import PredictionStore
from ...errors import ApiError
from ...settings import SCENARIO_HEADER

__all__ = ["SCENARIO_HEADER", "TASK_ERRORS", "Scenario", "ScenarioBook"]


# The API's task error codes and their documented texts (D-ERR).
TASK_ERRORS: dict[int, str] = {
    1200: "The content contains sensitive information.",
    1400: "A required parameter is missing.",
    1401: "The parameter value is invalid.",
    1402: "Unable to access the provided media URL.",
    1403: "The task could not be completed.",
    1405: "The task execution failed.",
    5000: "Internal error. Please retry later.",
    5003: "Service unavailable. Please retry later.",
    5004: "The request timed out.",
}
_KNOWN = {
    "name",
    "fail_code",
    "fail_message",
    "status",
    "nsfw",
    "queue_s",
    "sync_timeout",
    "poll_error_rate",
    "poll_error_statuses",
    "latency",
    "per_minute",
    "concurrency",
    "seed",
    "expires_after_s",
    "expires_after_count",
}


@dataclass
class Scenario:
    """One configured fault; see the module docstring for the fields."""

    name: str = ""
    fail_code: int | None = None
    fail_message: str | None = None
    status: str | None = None
    nsfw: bool = False
    queue_s: float = 0.0
    sync_timeout: bool = False
    poll_error_rate: float = 0.0
    poll_error_statuses: tuple[int, ...] = (500, 502, 503)
    latency: dict[str, float | str] = field(default_factory=dict)
    per_minute: int | None = None
    concurrency: int | None = None
    seed: int = 0
    expires_after_s: float | None = None
    expires_after_count: int | None = None
    # bookkeeping
    set_at: float = 0.0
    uses: int = 0

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Scenario:
        unknown = set(body) - _KNOWN - {"scope", "api_key", "count"}
        if unknown:
            raise ApiError(
                400,
                f"Invalid scenario: unknown field(s) {sorted(unknown)}; known: {sorted(_KNOWN)}",
            )
        values = {k: v for k, v in body.items() if k in _KNOWN}
        if "poll_error_statuses" in values:
            values["poll_error_statuses"] = tuple(values["poll_error_statuses"])
        try:
            scenario = cls(**values)
        except TypeError as exc:
            raise ApiError(400, f"Invalid scenario: {exc}") from None
        scenario._check()
        return scenario

    def _check(self) -> None:
        def bad(field_name: str, why: str) -> ApiError:
            return ApiError(400, f"Invalid scenario: $.{field_name}: {why}")

        if self.fail_code is not None and (
            not isinstance(self.fail_code, int) or self.fail_code <= 0
        ):
            raise bad("fail_code", "expected a positive task error code such as 1402")
        if self.status not in (None, "cancelled", "timeout"):
            raise bad("status", "expected 'cancelled' or 'timeout'")
        if not 0.0 <= float(self.poll_error_rate) <= 1.0:
            raise bad("poll_error_rate", "expected a share between 0 and 1")
        if any(s not in (500, 502, 503, 504, 429) for s in self.poll_error_statuses):
            raise bad(
                "poll_error_statuses", "expected statuses among 429, 500, 502, 503, 504"
            )
        if self.latency and self.latency.get("kind") not in (
            "fixed",
            "uniform",
            "lognormal",
        ):
            raise bad("latency.kind", "expected 'fixed', 'uniform' or 'lognormal'")
        for name in ("per_minute", "concurrency", "expires_after_count"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise bad(name, "expected an integer >= 1")
        if float(self.queue_s) < 0:
            raise bad("queue_s", "expected seconds >= 0")

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in sorted(_KNOWN)} | {"uses": self.uses}

    def expired(self, now: float) -> bool:
        if (
            self.expires_after_s is not None
            and now >= self.set_at + self.expires_after_s
        ):
            return True
        return (
            self.expires_after_count is not None
            and self.uses >= self.expires_after_count
        )

    def rng(self, *salt: object) -> random.Random:
        text = ":".join(str(s) for s in (self.seed, self.name, *salt))
        return random.Random(
            int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
        )

    def latency_s(self, rng: random.Random) -> float:
        kind = self.latency.get("kind")
        if kind == "fixed":
            return float(self.latency.get("ms", 0)) / 1000
        if kind == "uniform":
            return (
                rng.uniform(
                    float(self.latency.get("min_ms", 0)),
                    float(self.latency.get("max_ms", 0)),
                )
                / 1000
            )
        if kind == "lognormal":
            median = float(self.latency.get("median_ms", 100))
            sigma = float(self.latency.get("sigma", 0.5))
            return min(rng.lognormvariate(math.log(median), sigma), 60_000.0) / 1000
        return 0.0


@dataclass(frozen=True)
class _Chosen:
    """What a plan came from: the scenario, and the rate-limit slot it holds."""

    scenario: Scenario
    api_key: str
    reserved_at: float | None


class ScenarioBook:
    """Where scenarios are kept and chosen: the service's fault source.

    Implements :class:`~...core.components.FaultSource`: :meth:`plan` picks the
    scenario for a submit (most specific first) and turns it into a
    :class:`FaultPlan`; :meth:`record` counts it once the task exists.
    """

    def __init__(self, *, clock: ServerClock, store: PredictionStore) -> None:
        self.clock = clock
        self.store = store
        self.global_: Scenario | None = None
        self.by_key: dict[str, Scenario] = {}
        self.next_n: deque[list[Any]] = deque()  # [scenario, remaining]
        self.named: dict[str, Scenario] = {}
        self.by_prediction: dict[str, Scenario] = {}
        self._starts: dict[str, deque[float]] = {}
        self._polls: dict[str, int] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.global_ = None
            self.by_key.clear()
            self.next_n.clear()
            self.named.clear()
            self.by_prediction.clear()
            self._starts.clear()
            self._polls.clear()

    def forget(self, prediction_ids: Sequence[str]) -> None:
        """Retention pruned these predictions: drop their scenarios and poll counts."""
        with self._lock:
            for pid in prediction_ids:
                self.by_prediction.pop(pid, None)
                self._polls.pop(pid, None)

    def add(self, body: dict[str, Any]) -> Scenario:
        scenario = Scenario.from_json(body)
        scenario.set_at = self.clock.now()
        scope = body.get("scope", "global")
        with self._lock:
            if scope == "global":
                self.global_ = scenario
            elif scope == "key":
                key = body.get("api_key")
                if not isinstance(key, str) or not key:
                    raise ApiError(
                        400, "Invalid scenario: $.api_key: required with scope 'key'"
                    )
                self.by_key[key] = scenario
            elif scope == "next":
                count = body.get("count")
                if not isinstance(count, int) or count < 1:
                    raise ApiError(
                        400,
                        "Invalid scenario: $.count: an integer >= 1 is required with scope 'next'",
                    )
                self.next_n.append([scenario, count])
            elif scope == "named":
                if not scenario.name:
                    raise ApiError(
                        400, "Invalid scenario: $.name: required with scope 'named'"
                    )
                self.named[scenario.name] = scenario
            else:
                raise ApiError(
                    400,
                    "Invalid scenario: $.scope: expected 'global', 'key', 'next' or 'named'",
                )
        return scenario

    def choose(self, request: SubmitRequest) -> Scenario | None:
        """The scenario for one submit, most specific first (named, next, key, global)."""
        now = self.clock.now()
        with self._lock:
            if request.scenario:
                scenario = self.named.get(request.scenario)
                if scenario is None:
                    raise ApiError(
                        400,
                        f"Unknown scenario {request.scenario!r} in {SCENARIO_HEADER}; "
                        "set it first with scope 'named'",
                    )
                return scenario
            while self.next_n:
                head: Scenario = self.next_n[0][0]
                if head.expired(now):
                    self.next_n.popleft()
                    continue
                return head
            return self._ambient(request.api_key, now)

    def _ambient(self, api_key: str, now: float) -> Scenario | None:
        keyed = self.by_key.get(api_key)
        if keyed is not None and not keyed.expired(now):
            return keyed
        if self.global_ is not None and not self.global_.expired(now):
            return self.global_
        return None

    def state(self) -> dict[str, Any]:
        return {
            "global": self.global_.as_json() if self.global_ else None,
            "keys": {k: s.as_json() for k, s in self.by_key.items()},
            "next": [{"count": n, **s.as_json()} for s, n in self.next_n],
            "named": {k: s.as_json() for k, s in self.named.items()},
        }

    # -- the fault source ------------------------------------------------------------

    def plan(self, request: SubmitRequest) -> FaultPlan | None:
        """The fault for this submit; 429 when the scenario's rate limit is reached."""
        scenario = self.choose(request)
        if scenario is None:
            return None
        if scenario.per_minute is not None:
            reserved_at: float | None = self._rate_limit(scenario, request.api_key)
        else:
            reserved_at = None
        delay = (
            scenario.latency_s(scenario.rng("submit", scenario.uses))
            if scenario.latency
            else 0.0
        )
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
            slot_free_at=self._slot_free_at(scenario, request.api_key),
            forced_status=scenario.status,
            failure_code=failure_code,
            failure_message=failure_message,
            nsfw=scenario.nsfw,
            sync_timeout=scenario.sync_timeout,
            source=_Chosen(scenario, request.api_key, reserved_at),
        )

    def record(self, plan: FaultPlan, p: Prediction) -> None:
        """Count the scenario behind ``plan`` once its task exists."""
        if not isinstance(plan.source, _Chosen):
            return
        scenario = plan.source.scenario
        with self._lock:
            if self.next_n and self.next_n[0][0] is scenario:
                if self.next_n[0][1] <= 1:
                    self.next_n.popleft()
                else:
                    self.next_n[0][1] -= 1
            scenario.uses += 1
            self.by_prediction[p.id] = scenario

    def abandon(self, plan: FaultPlan) -> None:
        """The submit ``plan`` was made for was refused later: free its rate-limit slot."""
        chosen = plan.source
        if not isinstance(chosen, _Chosen) or chosen.reserved_at is None:
            return
        with self._lock:
            window = self._starts.get(chosen.api_key)
            if window is not None and chosen.reserved_at in window:
                window.remove(chosen.reserved_at)

    def _rate_limit(self, scenario: Scenario, api_key: str) -> float:
        """Reserve a start in the key's minute window (429 when it is full)."""
        now = self.clock.now()
        with self._lock:
            window = self._starts.setdefault(api_key, deque())
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

    def _slot_free_at(self, scenario: Scenario, api_key: str) -> float | None:
        """When a concurrency slot frees for a new task of ``api_key`` (None: one is free)."""
        cap = scenario.concurrency
        if cap is None:
            return None
        now = self.clock.now()
        busy = sorted(
            q.done_at
            for q in self.store.all()
            if q.api_key == api_key
            and q.done_at > now
            and not q.polls_needed
            and not q.follows_engine
            and not is_terminal(status_at(q, now))
        )
        if len(busy) < cap:
            return None
        return busy[len(busy) - cap]

    async def on_poll(self, p: Prediction) -> None:
        scenario = self.by_prediction.get(p.id) or self._ambient(
            p.api_key, self.clock.now()
        )
        if scenario is None:
            return
        with self._lock:
            count = self._polls[p.id] = self._polls.get(p.id, 0) + 1
        rng = scenario.rng(p.id, count)
        seconds = scenario.latency_s(rng) if scenario.latency else 0.0
        if seconds > 0:
            await self.clock.sleep_until(self.clock.now() + seconds)
        if scenario.poll_error_rate and rng.random() < scenario.poll_error_rate:
            status = rng.choice(list(scenario.poll_error_statuses))
            raise ApiError(
                status,
                f"Injected by the mock's scenario: HTTP {status} on a result poll",
            )
