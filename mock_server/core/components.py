"""What the service is handed: the request it serves and the components it calls.

The submission pipeline (:meth:`~.service.MockService.submit`) calls its
components by name, in an order that reads top to bottom. Each feature under
``features/`` implements one or more of these Protocols and is given to the
service when it is built (``mock_server/assembly.py``); the core imports no
feature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from ...contracts import ModelSpec, OutputPlan

if TYPE_CHECKING:
    from .prediction import Prediction

__all__ = [
    "Admission",
    "ChosenOutputs",
    "Expiring",
    "FaultPlan",
    "FaultSource",
    "Notifier",
    "OutputSource",
    "RouteCall",
    "RouteFault",
    "SubmitRequest",
    "WireDecision",
]


@dataclass(frozen=True)
class SubmitRequest:
    """One submit, validated against the contract, as the HTTP layer hands it over."""

    model: ModelSpec
    body: Mapping[str, Any]
    api_key: str
    webhook: str | None = None
    """The ``?webhook=`` URL, if any."""
    scenario: str | None = None
    """A named scenario asked for by header (``X-Wavespeed-Mock-Scenario``)."""
    decided: WireDecision | None = None
    """The fault source's decision at the edge (the wire layer), when the request
    came through it: the plan is made from its scenario, never chosen again."""

    @cached_property
    def plan(self) -> OutputPlan:
        """What the run makes, worked out once per request (admission, the row
        and the charge all read this one)."""
        return self.model.outputs_for(self.body)

    @cached_property
    def price(self) -> float:
        """The run's charge in USD, from :attr:`plan`, once per request."""
        return self.model.price.cost(self.model.base_price, self.body, self.plan)


@dataclass(frozen=True)
class FaultPlan:
    """What a scenario does to one submit, decided before the task is created."""

    name: str
    submit_delay_s: float = 0.0
    """Seconds the submit waits before it is answered (latency)."""
    queue_shift_s: float = 0.0
    """Seconds added to the task's time in ``created`` (a slow queue)."""
    slot_free_at: float | None = None
    """Clock time a concurrency slot frees: a clock-driven task stays ``created``
    until then (a concurrency cap)."""
    forced_status: str | None = None
    """``cancelled`` or ``timeout``: the task ends so."""
    failure_code: int = 0
    failure_message: str = ""
    nsfw: bool = False
    sync_timeout: bool = False
    """A sync-mode submit answers the 5004 timeout at once."""
    sync_gateway_timeout: bool = False
    """A sync-mode submit answers the gateway's HTTP 504 at once; the task goes on."""
    error_body: str = "html"
    """How that 504's body looks: ``json``, ``html``, ``text`` or ``empty``."""
    scenario: int = 0
    """The scenario's serial in the fault source, which ``record`` counts."""
    key_id: str = ""
    """The submit's key id (``core.keys.key_id``)."""
    reserved_at: float | None = None
    """The rate-limit slot the plan holds (its clock time), which ``abandon`` frees."""


@dataclass(frozen=True)
class RouteCall:
    """One API request as the fault layer sees it, before the app answers it."""

    route: str
    """``submit``, ``result``, ``upload_ticket``, ``upload_put``, ``output`` or
    ``api`` (any other route of the API)."""
    api_key: str | None = None
    scenario: str | None = None
    """A named scenario asked for by header (``X-Wavespeed-Mock-Scenario``)."""
    prediction_id: str | None = None
    """The prediction a ``result`` or ``output`` request is about."""
    model: str | None = None
    """The model a submit names."""
    prediction: Prediction | None = None
    """The row of ``prediction_id``, read once at the edge (None: no such
    prediction); a result poll is answered from this same read."""


@dataclass(frozen=True)
class WireDecision:
    """The fault source's one decision about a request, made at the edge."""

    fault: RouteFault | None = None
    """What happens on the wire (None: nothing)."""
    scenario: int | None = None
    """The serial of the scenario chosen for the request (None: none applies)."""


@dataclass(frozen=True)
class RouteFault:
    """What happens to one request on the wire, decided before the app runs.

    ``kind`` is ``answer`` (``status`` with an ``error_body`` instead of the
    app's answer: nothing is done), or a connection fault applied once the app
    has answered (the work is done, the answer is lost): ``reset``, ``empty``,
    ``malformed_chunk``, ``dribble`` (the answer, ``dribble_bytes`` at a time
    every ``dribble_interval_s``) or ``hang`` (nothing is sent until the client
    gives up, at most ``hang_s``).
    """

    kind: str
    status: int = 0
    error_body: str = "json"
    message: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    only_after_success: bool = False
    """Apply only when the app answered 2xx (a lost answer needs a created task)."""
    dribble_bytes: int = 16
    dribble_interval_s: float = 0.05
    hang_s: float = 60.0


class Admission(Protocol):
    """Refuses a submit before anything is created or charged."""

    def admit(self, request: SubmitRequest) -> None:
        """Return to let the submit through; raise ``ApiError`` (400, 403) to refuse."""
        ...


class FaultSource(Protocol):
    """The scenarios: failures and limits injected on purpose."""

    def plan(self, request: SubmitRequest) -> FaultPlan | None:
        """The fault for this submit, or None; raise ``ApiError`` (429) to refuse it."""
        ...

    def record(self, plan: FaultPlan, p: Prediction) -> None:
        """``p`` was created under ``plan`` (counts a use; remembered for polls)."""
        ...

    def abandon(self, plan: FaultPlan) -> None:
        """The submit ``plan`` was made for was refused later: undo what it held."""
        ...

    async def on_poll(self, p: Prediction) -> None:
        """Before a result poll is answered: may wait (latency) or raise (5xx)."""
        ...

    def idle(self) -> bool:
        """True while no scenario is set (the wire layer then skips the request)."""
        ...

    def route_fault(self, call: RouteCall) -> WireDecision:
        """The one decision about ``call``: its scenario, and what happens on the
        wire (gateway answers, connection faults)."""
        ...

    def timestamp_digits(self, p: Prediction) -> int | None:
        """Fractional digits of ``created_at`` in the next answer about ``p``
        (None: the default)."""
        ...

    def forget(self, prediction_ids: Sequence[str]) -> None:
        """Retention pruned these predictions: drop what is kept for them."""
        ...

    def reset(self) -> None: ...


class Notifier(Protocol):
    """Told once a prediction with a webhook reaches a terminal status."""

    async def notify(self, p: Prediction, view: dict[str, Any]) -> None: ...

    def reset(self) -> None: ...


@dataclass(frozen=True)
class ChosenOutputs:
    """What a custom-output rule makes a task return: files (bytes and format)
    or URLs handed out as they are."""

    files: tuple[tuple[bytes, str], ...] = ()
    urls: tuple[str, ...] = ()
    rule: int = 0


class OutputSource(Protocol):
    """Says what a submit's task returns instead of a synthetic output."""

    def choose(self, model: str, body: Mapping[str, Any]) -> ChosenOutputs | None: ...

    def reset(self) -> None: ...


class Expiring(Protocol):
    """Keeps files of its own that retention expires and a reset removes (uploads)."""

    def expire(self, max_age_s: float) -> int:
        """Remove what is older than ``max_age_s`` seconds (real time); how many.
        Blocking: the service calls it off the event loop."""
        ...

    def clear(self) -> int:
        """Remove everything (a reset); how many."""
        ...
