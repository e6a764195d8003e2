"""What the mock received: the tasks an app submitted, as typed records, and
one-line assertions about them (respx's ``route.calls``, WireMock's ``verify``).

The fixtures expose these as methods (``wavespeed_server.submissions(...)``,
``.assert_submitted(...)``, ``.last_submission``); the functions here take the
server's service, so an in-process server has them too.

Example:
    >>> output = wavespeed_client.run(T2V, {"prompt": "Waves", "seed": 7})
    >>> task = wavespeed_server.assert_submitted(T2V, where={"seed": 7})
    >>> task.id  # the task id the SDK call created (run() returns only outputs)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..mock_server.core.prediction import format_timestamp
from ..mock_server.core.service import MockService

__all__ = ["Received", "SubmittedTask", "assert_submitted", "submissions"]

Where = Mapping[str, Any] | Callable[[Mapping[str, Any]], bool] | None
"""Which submits match: body fields that must be equal, or a predicate on the body."""


@dataclass(frozen=True)
class SubmittedTask:
    """One submit the mock accepted, as the app sent it."""

    id: str
    """The task id (``data.id``), the one an SDK ``run`` created."""
    model: str
    body: Mapping[str, Any]
    """The request body as received (the API's field names)."""
    seed: int
    """The seed the task used (a random one when the body asked for -1)."""
    webhook: str | None
    """The webhook URL (``?webhook=`` or the body's ``webhook_url``)."""
    scenario: str | None
    """The scenario the task was made under, if any."""
    key_hint: str
    """The API key, masked (keys are never kept)."""
    created_at: str
    """When, on the server's clock (RFC 3339)."""
    status: str
    """Its status now."""


def submissions(
    service: MockService, model: str | None = None, *, where: Where = None
) -> list[SubmittedTask]:
    """The tasks submitted so far (since the last reset), oldest first."""
    found = []
    for p in service.predictions():
        task = SubmittedTask(
            id=p.id,
            model=p.model,
            body=dict(p.input),
            seed=p.seed,
            webhook=p.webhook,
            scenario=p.scenario,
            key_hint=p.key_hint,
            created_at=format_timestamp(p.created_at),
            status=service.status(p),
        )
        if (model is None or task.model == model) and not _differences(task, where):
            found.append(task)
    return found


def assert_submitted(
    service: MockService,
    model: str | None = None,
    *,
    where: Where = None,
    count: int | None = None,
) -> SubmittedTask:
    """The last matching submit; an ``AssertionError`` that says what came
    closest when none matches (or when ``count`` submits were expected and
    another number matched)."""
    __tracebackhide__ = True
    matching = submissions(service, model, where=where)
    wanted = f"a submit to {model or 'any model'}" + (
        f" with {dict(where)}" if isinstance(where, Mapping) else " matching where"
        if where is not None else ""
    )  # fmt: skip
    if count is not None and len(matching) != count:
        raise AssertionError(
            f"expected {count} of {wanted}; got {len(matching)}: "
            + ", ".join(f"{t.id} {dict(t.body)}" for t in matching[:5])
        )
    if matching:
        return matching[-1]
    every = submissions(service)
    if not every:
        raise AssertionError(f"expected {wanted}; the mock received no submit at all")
    closest = min(
        every,
        key=lambda t: (t.model != model if model else 0, len(_differences(t, where))),
    )
    problems = _differences(closest, where)
    if model and closest.model != model:
        problems.insert(0, f"model {closest.model!r} != {model!r}")
    raise AssertionError(
        f"expected {wanted}; none of the {len(every)} submits matched. Closest: "
        f"{closest.id} to {closest.model} with {dict(closest.body)} ("
        + "; ".join(problems)
        + ")"
    )


def _differences(task: SubmittedTask, where: Where) -> list[str]:
    if where is None:
        return []
    if callable(where):
        return [] if where(task.body) else ["the where predicate said no"]
    missing = object()
    found = []
    for name, expected in where.items():
        actual = task.body.get(name, missing)
        if actual is missing:
            found.append(f"{name} missing")
        elif actual != expected:
            found.append(f"{name} {actual!r} != {expected!r}")
    return found


class Received:
    """What the mock received, for a fixture that holds the server's ``service``."""

    service: MockService

    def submissions(
        self, model: str | None = None, *, where: Where = None
    ) -> list[SubmittedTask]:
        """The tasks submitted since the last reset, oldest first, as typed records;
        ``where``: body fields that must be equal, or a predicate on the body."""
        return submissions(self.service, model, where=where)

    def assert_submitted(
        self, model: str | None = None, *, where: Where = None, count: int | None = None
    ) -> SubmittedTask:
        """The last matching submit (its ``id`` is the task an SDK call made); an
        ``AssertionError`` naming what came closest when none matches."""
        __tracebackhide__ = True
        return assert_submitted(self.service, model, where=where, count=count)

    @property
    def last_submission(self) -> SubmittedTask | None:
        """The newest submit, or None."""
        found = submissions(self.service)
        return found[-1] if found else None
