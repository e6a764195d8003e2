"""One scenario: its fields, their checks, its seeded draws and its wire faults.

A scenario is a small JSON object (docs/scenarios.md lists every field). This
module knows what one scenario does; :mod:`.book` keeps them and chooses one.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from typing import Any

from ....contracts import iter_errors, load_schema, task_errors
from ...core.components import RouteFault
from ...core.prediction import TIMESTAMP_DIGITS
from ...errors import ApiError, bad_request_message

__all__ = ["ROUTES", "TASK_ERRORS", "Scenario"]


TASK_ERRORS = task_errors()
"""The API's task error codes and their documented texts (D-ERR), from the contract."""
ROUTES = ("submit", "result", "upload_ticket", "upload_put", "output", "api")
"""The routes a wire fault can name (``*``: all of them); ``api`` is any other
route under ``/api/v3``."""

_LOST_ANSWERS = {"reset": "reset", "timeout": "hang"}

SCHEMA = "control-scenario.request.json"
"""The contract's schema of a scenario body: field names, types and bounds."""
_WHERE = ("scope", "api_key", "count")
"""Fields of the body that say where a scenario applies (the book's business)."""
_KNOWN = tuple(name for name in load_schema(SCHEMA)["properties"] if name not in _WHERE)
_TUPLES = ("poll_error_statuses", "routes")


@dataclass
class Scenario:
    """One configured fault; see docs/scenarios.md for the fields."""

    name: str = ""
    model: str | None = None
    """Only requests about this model (submits to it, its tasks' polls and
    downloads); None: every model."""
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
    submit_error: int | None = None
    lost_answer: str | None = None
    sync_gateway_timeout: bool = False
    upload_ticket_error: int | None = None
    upload_put_error: int | None = None
    gateway_error: int | None = None
    error_body: str | None = None
    connection_fault: str | None = None
    routes: tuple[str, ...] = ("*",)
    dribble_bytes: int = 16
    dribble_interval_ms: float = 50.0
    hang_s: float = 60.0
    output_ttl_s: float | None = None
    timestamp_digits: int | str | None = None
    # bookkeeping
    set_at: float = 0.0
    serial: int = 0
    """Its name in the book's decisions (``WireDecision.scenario``, ``FaultPlan``)."""
    uses: int = 0
    draws: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Scenario:
        unknown = set(body) - set(_KNOWN) - set(_WHERE)
        if unknown:
            raise ApiError(
                400,
                f"Invalid scenario: unknown field(s) {sorted(unknown)}; "
                f"known: {sorted(_KNOWN)}",
            )
        problems = list(iter_errors(SCHEMA, body))
        if problems:
            raise ApiError(400, bad_request_message(problems))
        values = {k: v for k, v in body.items() if k in _KNOWN}
        for name in _TUPLES:
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def as_json(self) -> dict[str, Any]:
        values = {k: getattr(self, k) for k in sorted(_KNOWN)}
        for name in _TUPLES:
            values[name] = list(values[name])
        return values | {"uses": self.uses}

    def applies_to(self, model: str | None) -> bool:
        """Whether the scenario covers a request about ``model`` (None: a
        request about no model, such as an upload)."""
        return self.model is None or self.model == model

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

    # -- seeded draws -------------------------------------------------------------

    def draw(self, purpose: str) -> random.Random:
        """A generator for the next draw of ``purpose`` (``poll``, ``latency``, ...).

        Keyed by the seed, the scenario's name, the purpose and how many draws of
        that purpose came before: the same seed and the same order of requests
        give the same draws on every run and machine (SHA-256 and Python's
        Mersenne Twister are both platform-independent).
        """
        count = self.draws.get(purpose, 0)
        self.draws[purpose] = count + 1
        text = ":".join(str(s) for s in (self.seed, self.name, purpose, count))
        return random.Random(
            int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
        )

    def latency_s(self) -> float:
        kind = self.latency.get("kind")
        if kind == "fixed":
            return float(self.latency.get("ms", 0)) / 1000
        if kind == "uniform":
            low = float(self.latency.get("min_ms", 0))
            high = float(self.latency.get("max_ms", 0))
            return self.draw("latency").uniform(low, high) / 1000
        if kind == "lognormal":
            median = float(self.latency.get("median_ms", 100))
            sigma = float(self.latency.get("sigma", 0.5))
            drawn = self.draw("latency").lognormvariate(math.log(median), sigma)
            return min(drawn, 60_000.0) / 1000
        return 0.0

    def created_at_digits(self) -> int | None:
        """Fractional digits of ``created_at`` in the next answer (None: default)."""
        if self.timestamp_digits == "drawn":
            return self.draw("timestamp").choice(TIMESTAMP_DIGITS)
        if isinstance(self.timestamp_digits, int):
            return self.timestamp_digits
        return None

    # -- where it applies ---------------------------------------------------------

    def on_route(self, route: str) -> bool:
        """Whether the scenario's gateway error or connection fault covers ``route``."""
        return "*" in self.routes or route in self.routes

    def touches(self, route: str) -> bool:
        """Whether a request on ``route`` can take this scenario (for next-N)."""
        wire = (
            self.gateway_error is not None or self.connection_fault is not None
        ) and self.on_route(route)
        if route == "submit":
            return wire or not self._only_other_routes()
        if route == "upload_ticket":
            return wire or self.upload_ticket_error is not None
        if route == "upload_put":
            return wire or self.upload_put_error is not None
        return wire

    def _only_other_routes(self) -> bool:
        """True when every effect is on routes other than submit (uploads, or
        wire faults that leave submit out): such a scenario creates no task."""
        wire_elsewhere = (
            self.gateway_error is not None or self.connection_fault is not None
        ) and not self.on_route("submit")
        other = wire_elsewhere or self.upload_ticket_error or self.upload_put_error
        if not other:
            return False
        task_level = (
            "fail_code",
            "status",
            "nsfw",
            "queue_s",
            "sync_timeout",
            "poll_error_rate",
            "latency",
            "per_minute",
            "concurrency",
            "submit_error",
            "lost_answer",
            "sync_gateway_timeout",
            "output_ttl_s",
        )
        if self.timestamp_digits is not None:  # 0 digits is a style too
            return False
        return not any(getattr(self, name) for name in task_level)

    # -- the wire -------------------------------------------------------------------

    def wire_fault(self, route: str) -> RouteFault | None:
        """What this scenario does on the wire to one request on ``route``.

        An answer in place of the app's comes first (nothing is done), then a
        connection fault once the app has answered (the work is done).
        """
        answer = {
            "submit": self.submit_error,
            "upload_ticket": self.upload_ticket_error,
            "upload_put": self.upload_put_error,
        }.get(route)
        if answer is not None:
            default_body = "xml" if route == "upload_put" else "json"
            return self._answer(answer, self.error_body or default_body)
        if self.gateway_error is not None and self.on_route(route):
            return self._answer(self.gateway_error, self.error_body or "html")
        if route == "submit" and self.lost_answer is not None:
            return self._connection(
                _LOST_ANSWERS[self.lost_answer], only_after_success=True
            )
        if self.connection_fault is not None and self.on_route(route):
            return self._connection(self.connection_fault)
        return None

    def expired_output(self) -> RouteFault:
        """The storage's 403 for an output URL past its TTL."""
        return RouteFault(
            kind="answer",
            status=403,
            error_body="xml",
            message="Request has expired",
        )

    def _answer(self, status: int, body: str) -> RouteFault:
        headers: tuple[tuple[str, str], ...] = ()
        if status == 429:
            headers = (("Retry-After", "1"),)
        return RouteFault(
            kind="answer",
            status=status,
            error_body=body,
            message=f"Injected by the mock's scenario {self.name or 'unnamed'!r}",
            headers=headers,
        )

    def _connection(self, kind: str, *, only_after_success: bool = False) -> RouteFault:
        return RouteFault(
            kind=kind,
            only_after_success=only_after_success,
            dribble_bytes=int(self.dribble_bytes),
            dribble_interval_s=float(self.dribble_interval_ms) / 1000,
            hang_s=float(self.hang_s),
        )
