"""Properties of the lifecycle's pure core, ``status_at(prediction, now)``.

The status is worked out from the stored row and the clock, never stored, so
these hold for any row: statuses move forward only (created, processing, then a
terminal one), a terminal status never changes, ``completed`` needs a finished
render and a schedule that allows it, and a deleted task reads ``deleted``.

Each property runs once per kind of profile (clock-driven, ``polls:N``,
``engine``), so that every kind gets its full share of examples.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wavespeed_mock.contracts import terminal_statuses
from wavespeed_mock.mock_server import Prediction, status_at

TERMINAL = terminal_statuses()
# Scenarios force these; completed and failed come from the render itself.
FORCED = sorted(TERMINAL - {"completed", "failed"})
PROFILES = ("clock", "polls", "engine")
PROFILE_NAMES = {"clock": "fast", "polls": "polls:N", "engine": "engine"}

PROPERTY = settings(derandomize=True, deadline=None)

times = st.floats(min_value=0, max_value=1e6, allow_nan=False)
spans = st.floats(min_value=0, max_value=120, allow_nan=False)
poll_steps = st.integers(0, 3)
"""Polls answered between two looks."""

ENDINGS: dict[str, dict[str, Any]] = {
    "rendered": {"rendered_at": 1.0},
    "failed": {"failure_code": 500, "failure_message": "render failed"},
    **{status: {"forced_status": status} for status in FORCED},
}
"""How a render ends: a file, a failure, or a scenario's verdict."""
ENDED_AS = {"rendered": "completed", "failed": "failed"}
STAGES: dict[str, dict[str, Any]] = {
    "queued": {},
    "rendering": {"render_started_at": 1.0},
    "rendered and failed": {"rendered_at": 1.0, "failure_code": 5004},
    **{name: {"render_started_at": 1.0, **fields} for name, fields in ENDINGS.items()},
}
"""What a row has recorded so far; each stage is drawn as often as the others."""

by_profile = pytest.mark.parametrize("profile", PROFILES)


def rank(status: str) -> int:
    """created < processing < every terminal status."""
    if status in TERMINAL:
        return 2
    return {"created": 0, "processing": 1}[status]


@st.composite
def predictions(draw: st.DrawFn, profile: str) -> Prediction:
    """A stored row under a clock, polls:N or engine profile, at any stage."""
    created_at = draw(times)
    start_at = created_at + draw(spans)
    done_at = start_at + draw(spans)
    stage = STAGES[draw(st.sampled_from(sorted(STAGES)))]
    polls_needed = (
        draw(st.integers(1, 5) | st.integers(1, 50)) if profile == "polls" else 0
    )
    return Prediction(
        id="0" * 32,
        model="character-ai/ovi/text-to-video",
        input={"prompt": "Waves at dawn."},
        seed_requested=-1,
        seed=draw(st.integers(0, 2**31 - 1)),
        created_at=created_at,
        profile=PROFILE_NAMES[profile],
        start_at=start_at,
        done_at=done_at,
        polls_needed=polls_needed,
        follows_engine=profile == "engine",
        polls=draw(poll_counts(polls_needed)),
        **stage,
    )


def poll_counts(polls_needed: int) -> st.SearchStrategy[int]:
    """Poll counts from none to just past the one that may end the task."""
    return st.integers(0, max(polls_needed, 3) + 1)


def moments(p: Prediction) -> st.SearchStrategy[float]:
    """Clock times around the row's schedule, its marks included."""
    marks = st.sampled_from([p.created_at, p.start_at, p.done_at])
    return marks | st.floats(
        min_value=p.created_at - 5, max_value=p.done_at + 5, allow_nan=False
    )


def scenes(profile: str) -> st.SearchStrategy[tuple[Prediction, float]]:
    """A row and a clock time near its schedule."""
    return predictions(profile).flatmap(lambda p: st.tuples(st.just(p), moments(p)))


def schedule_allows(p: Prediction, now: float) -> bool:
    """Whether the row's profile lets it be terminal at ``now``."""
    if p.follows_engine:
        return p.outcome_known
    if p.polls_needed:
        return p.polls >= p.polls_needed
    return now >= p.done_at


@by_profile
@PROPERTY
@given(data=st.data())
def test_a_status_never_goes_backwards(profile: str, data: st.DataObject) -> None:
    p = data.draw(predictions(profile))
    now, later = sorted(data.draw(st.tuples(moments(p), moments(p))))
    polls, more_polls = data.draw(st.tuples(poll_counts(p.polls_needed), poll_steps))
    before = status_at(replace(p, polls=polls), now)
    after = status_at(replace(p, polls=polls + more_polls), later)
    assert rank(before) <= rank(after), (before, after)


@by_profile
@PROPERTY
@given(data=st.data(), steps=st.lists(st.tuples(spans, poll_steps), max_size=8))
def test_a_terminal_status_stays_the_same(
    profile: str, data: st.DataObject, steps: list[tuple[float, int]]
) -> None:
    p, now = data.draw(scenes(profile))
    seen = [status_at(p, now)]
    for wait, polls in steps:
        now += wait
        p = replace(p, polls=p.polls + polls)
        seen.append(status_at(p, now))
    first = next((i for i, s in enumerate(seen) if s in TERMINAL), None)
    if first is not None:
        assert set(seen[first:]) == {seen[first]}, seen


@by_profile
@PROPERTY
@given(data=st.data())
def test_completed_needs_a_finished_render_and_the_schedule(
    profile: str, data: st.DataObject
) -> None:
    p, now = data.draw(scenes(profile))
    status = status_at(p, now)
    if status == "completed":
        assert p.rendered_at is not None
        assert p.failure_code == 0 and p.forced_status is None
        assert schedule_allows(p, now)
    if status in TERMINAL - {"deleted"}:
        # No outcome shows before it is known and the schedule allows it.
        assert p.outcome_known and schedule_allows(p, now)


@by_profile
@PROPERTY
@given(data=st.data(), ending=st.sampled_from(sorted(ENDINGS.keys() - {"deleted"})))
def test_an_ended_render_shows_its_outcome_once_the_schedule_allows(
    profile: str, data: st.DataObject, ending: str
) -> None:
    p, now = data.draw(scenes(profile))
    running = replace(p, rendered_at=None, failure_code=0, forced_status=None)
    ended = replace(running, **ENDINGS[ending])
    if schedule_allows(ended, now):
        assert status_at(ended, now) == ENDED_AS.get(ending, ending)
    else:
        # Until the schedule allows it, the outcome does not show.
        assert status_at(ended, now) == status_at(running, now)
        assert status_at(ended, now) in {"created", "processing"}


@by_profile
@PROPERTY
@given(
    data=st.data(),
    ending=st.sampled_from(sorted(ENDINGS)),
    steps=st.lists(st.tuples(spans, poll_steps), min_size=3, max_size=3),
)
def test_a_status_never_goes_backwards_as_the_render_runs(
    profile: str, data: st.DataObject, ending: str, steps: list[tuple[float, int]]
) -> None:
    p, now = data.draw(scenes(profile))
    queued = replace(
        p, render_started_at=None, rendered_at=None, failure_code=0, forced_status=None
    )
    started = replace(queued, render_started_at=now)
    ended = replace(started, **ENDINGS[ending])
    seen = []
    polls = p.polls
    for row, (wait, more_polls) in zip((queued, started, ended), steps, strict=True):
        now += wait
        polls += more_polls
        seen.append(status_at(replace(row, polls=polls), now))
    assert [rank(s) for s in seen] == sorted(rank(s) for s in seen), seen


@by_profile
@PROPERTY
@given(data=st.data(), now=times, polls=st.integers(0, 60))
def test_deleted_wins(
    profile: str, data: st.DataObject, now: float, polls: int
) -> None:
    p = data.draw(predictions(profile))
    assert status_at(replace(p, forced_status="deleted", polls=polls), now) == "deleted"


@PROPERTY
@given(scene=scenes("polls"), later=spans)
def test_polls_profile_ignores_the_clock(
    scene: tuple[Prediction, float], later: float
) -> None:
    p, now = scene
    assert status_at(p, now) == status_at(p, now + later)


@pytest.mark.parametrize("profile", ["clock", "engine"])
@PROPERTY
@given(data=st.data(), polls=st.integers(0, 60))
def test_other_profiles_ignore_the_poll_count(
    profile: str, data: st.DataObject, polls: int
) -> None:
    p, now = data.draw(scenes(profile))
    assert status_at(p, now) == status_at(replace(p, polls=polls), now)
