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

import contextvars
import hashlib
import math
import random
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...core.prediction import Prediction, status_at
from ...errors import ApiError
from ...http.bodies import read_json_body
from ...http.responses import envelope

if TYPE_CHECKING:
    from ...core.service import MockService

__all__ = ["SCENARIO_HEADER", "TASK_ERRORS", "Scenario", "ScenarioBook", "install"]

SCENARIO_HEADER = "x-wavespeed-mock-scenario"

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


# The scenario chosen for the submit being handled: set by the submit hook, read
# by the admission check and the created listener within the same request.
_selected: contextvars.ContextVar[tuple[Scenario, str] | None] = contextvars.ContextVar(
    "scenario", default=None
)


class ScenarioBook:
    """Where scenarios are kept and chosen."""

    def __init__(self, service: MockService) -> None:
        self.service = service
        self.global_: Scenario | None = None
        self.by_key: dict[str, Scenario] = {}
        self.next_n: deque[list[Any]] = deque()  # [scenario, remaining]
        self.named: dict[str, Scenario] = {}
        self.by_prediction: dict[str, Scenario] = {}
        self._starts: dict[str, deque[float]] = {}
        self._polls: dict[str, int] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self.global_ = None
            self.by_key.clear()
            self.next_n.clear()
            self.named.clear()
            self.by_prediction.clear()
            self._starts.clear()
            self._polls.clear()

    def add(self, body: dict[str, Any]) -> Scenario:
        scenario = Scenario.from_json(body)
        scenario.set_at = self.service.clock.now()
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

    def choose(self, request: Request, api_key: str) -> tuple[Scenario, str] | None:
        """The scenario for one submit and where it came from, most specific first.

        A next-N scenario is only counted once the task is really created.
        """
        now = self.service.clock.now()
        with self._lock:
            name = request.headers.get(SCENARIO_HEADER)
            if name:
                scenario = self.named.get(name)
                if scenario is None:
                    raise ApiError(
                        400,
                        f"Unknown scenario {name!r} in {SCENARIO_HEADER}; set it first with scope 'named'",
                    )
                return scenario, "named"
            while self.next_n:
                head: Scenario = self.next_n[0][0]
                if head.expired(now):
                    self.next_n.popleft()
                    continue
                return head, "next"
            keyed = self.by_key.get(api_key)
            if keyed is not None and not keyed.expired(now):
                return keyed, "key"
            if self.global_ is not None and not self.global_.expired(now):
                return self.global_, "global"
            return None

    def _consume_next(self, scenario: Scenario) -> None:
        with self._lock:
            if self.next_n and self.next_n[0][0] is scenario:
                if self.next_n[0][1] <= 1:
                    self.next_n.popleft()
                else:
                    self.next_n[0][1] -= 1

    def state(self) -> dict[str, Any]:
        return {
            "global": self.global_.as_json() if self.global_ else None,
            "keys": {k: s.as_json() for k, s in self.by_key.items()},
            "next": [{"count": n, **s.as_json()} for s, n in self.next_n],
            "named": {k: s.as_json() for k, s in self.named.items()},
        }

    # -- the hooks -----------------------------------------------------------------

    async def on_submit(self, request: Request, api_key: str) -> None:
        chosen = self.choose(request, api_key)
        _selected.set(chosen)
        if chosen is not None:
            await self._delay(chosen[0], chosen[0].rng("submit", chosen[0].uses))

    def admit(self, model: Any, api_key: str) -> None:
        chosen = _selected.get()
        if chosen is not None and chosen[0].per_minute is not None:
            self._rate_limit(chosen[0], api_key)

    def _rate_limit(self, scenario: Scenario, api_key: str) -> None:
        now = self.service.clock.now()
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

    def on_created(self, p: Prediction) -> None:
        chosen = _selected.get()
        if chosen is None:
            return
        _selected.set(None)
        scenario, source = chosen
        if source == "next":
            self._consume_next(scenario)
        scenario.uses += 1
        self.by_prediction[p.id] = scenario
        changes: dict[str, Any] = {"scenario": scenario.name or "unnamed"}
        shift = float(scenario.queue_s) + self._concurrency_wait(scenario, p)
        if shift:
            changes["start_at"] = p.start_at + shift
            changes["done_at"] = p.done_at + shift
        if scenario.status is not None:
            changes["forced_status"] = scenario.status
            changes["failure_message"] = (
                f"Prediction {scenario.status} by the mock's scenario"
            )
        elif scenario.fail_code is not None:
            changes["failure_code"] = scenario.fail_code
            changes["failure_message"] = scenario.fail_message or TASK_ERRORS.get(
                scenario.fail_code, "The task execution failed."
            )
        self.service.store.update(p, **changes)

    def _concurrency_wait(self, scenario: Scenario, p: Prediction) -> float:
        """Seconds this task waits in ``created`` for a slot (clock profiles only)."""
        cap = scenario.concurrency
        if cap is None or p.polls_needed or p.follows_engine:
            return 0.0
        now = self.service.clock.now()
        busy = sorted(
            q.done_at
            for q in self.service.store.all()
            if q.api_key == p.api_key
            and q.id != p.id
            and q.done_at > now
            and status_at(q, now)
            not in ("completed", "failed", "cancelled", "timeout", "deleted")
        )
        if len(busy) < cap:
            return 0.0
        return max(0.0, busy[len(busy) - cap] - p.start_at)

    def on_rendered(self, p: Prediction) -> None:
        scenario = self.by_prediction.get(p.id)
        if scenario is not None and scenario.nsfw:
            self.service.store.update(p, nsfw=[True] * max(1, len(p.nsfw)))

    async def on_poll(self, p: Prediction) -> None:
        scenario = self.by_prediction.get(p.id) or self._ambient(p.api_key)
        if scenario is None:
            return
        with self._lock:
            count = self._polls[p.id] = self._polls.get(p.id, 0) + 1
        rng = scenario.rng(p.id, count)
        await self._delay(scenario, rng)
        if scenario.poll_error_rate and rng.random() < scenario.poll_error_rate:
            status = rng.choice(list(scenario.poll_error_statuses))
            raise ApiError(
                status,
                f"Injected by the mock's scenario: HTTP {status} on a result poll",
            )

    def _ambient(self, api_key: str) -> Scenario | None:
        now = self.service.clock.now()
        keyed = self.by_key.get(api_key)
        if keyed is not None and not keyed.expired(now):
            return keyed
        if self.global_ is not None and not self.global_.expired(now):
            return self.global_
        return None

    async def _delay(self, scenario: Scenario, rng: random.Random) -> None:
        seconds = scenario.latency_s(rng) if scenario.latency else 0.0
        if seconds > 0:
            clock = self.service.clock
            await clock.sleep_until(clock.now() + seconds)

    def sync_deadline(self, p: Prediction, deadline: float) -> float:
        scenario = self.by_prediction.get(p.id)
        if scenario is not None and scenario.sync_timeout:
            return self.service.clock.now()
        return deadline


def install(service: MockService) -> list[BaseRoute]:
    """Register the scenario hooks; return the ``/_mock/scenarios`` routes."""
    book = ScenarioBook(service)
    service.scenarios = book
    service.submit_hooks.append(book.on_submit)
    service.admission_checks.append(book.admit)
    service.created_listeners.append(book.on_created)
    service.render_listeners.append(book.on_rendered)
    service.poll_hooks.append(book.on_poll)
    service.sync_deadline_hooks.append(book.sync_deadline)
    service.reset_listeners.append(book.clear)

    async def set_scenario(request: Request) -> Response:
        body = await read_json_body(request, 64 * 1024)
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid scenario: $: expected a JSON object")
        scenario = book.add(body)
        return envelope({"scenario": scenario.as_json(), "scenarios": book.state()})

    async def list_scenarios(request: Request) -> Response:
        return envelope({"scenarios": book.state()})

    async def clear_scenarios(request: Request) -> Response:
        book.clear()
        return envelope({"scenarios": book.state()})

    return [
        Route("/_mock/scenarios", set_scenario, methods=["POST"]),
        Route("/_mock/scenarios", list_scenarios, methods=["GET"]),
        Route("/_mock/scenarios", clear_scenarios, methods=["DELETE"]),
    ]
