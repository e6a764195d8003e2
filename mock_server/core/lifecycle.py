"""The lifecycle: the status a client sees, as a pure function of a row and ``now``.

A virtual clock therefore needs no timers, a restart needs no catch-up, and a
status can never go backwards (tests/mock_server/core/test_lifecycle_properties.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...contracts import refunded_statuses, terminal_statuses

if TYPE_CHECKING:
    from .prediction import Prediction

__all__ = ["is_refunded", "is_terminal", "status_at"]


def status_at(p: Prediction, now: float) -> str:
    """The status a client sees at clock time ``now``; monotone in ``now`` and polls."""
    if p.forced_status == "deleted":
        return "deleted"
    if p.follows_engine:
        if p.outcome_known:
            return p.terminal_status
        return "processing" if p.render_started_at is not None else "created"
    if p.polls_needed:
        if p.polls >= p.polls_needed and p.outcome_known:
            return p.terminal_status
        return "created" if p.polls <= 1 and p.polls_needed > 2 else "processing"
    if now >= p.done_at and p.outcome_known:
        return p.terminal_status
    return "processing" if now >= p.start_at else "created"


def is_terminal(status: str) -> bool:
    """Whether a task in ``status`` never changes again (the contract's ``x-terminal``)."""
    return status in terminal_statuses()


def is_refunded(p: Prediction, now: float) -> bool:
    """Whether ``p``'s charge is refunded: it ended in one of the contract's refunded
    statuses (``x-refunded``), or it failed before it was deleted."""
    status = status_at(p, now)
    if status == "deleted":
        return p.failure_code != 0
    return status in refunded_statuses()
