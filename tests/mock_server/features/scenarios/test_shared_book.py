"""The scenario book shared by processes on one database (``--database``): two
books on one PostgreSQL database play two server processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from wavespeed_mock.mock_server.core.clock import ServerClock
from wavespeed_mock.mock_server.core.components import RouteCall
from wavespeed_mock.mock_server.core.pg_store import PostgresStore
from wavespeed_mock.mock_server.errors import ApiError
from wavespeed_mock.mock_server.features.scenarios import SharedScenarioBook

from ..._support import wait_until
from ...core.test_store import prediction
from .test_book import submit

pytestmark = pytest.mark.postgres


@pytest.fixture
def books(database: str) -> Iterator[tuple[SharedScenarioBook, SharedScenarioBook]]:
    stores = [PostgresStore(database) for _ in range(2)]
    clock = ServerClock(virtual=True, start=1000.0)
    try:
        yield tuple(  # type: ignore[misc]
            SharedScenarioBook(clock=clock, store=s, shared=s) for s in stores
        )
    finally:
        for store in stores:
            store.close()


def test_a_scenario_set_through_one_process_decides_for_the_other(
    books: tuple[SharedScenarioBook, SharedScenarioBook],
) -> None:
    first, second = books
    assert first.idle() and second.idle()
    first.add({"fail_code": 5003})
    wait_until(lambda: not second.idle(), what="the change to reach the other")
    plan = second.plan(submit(second))
    assert plan is not None and plan.failure_code == 5003
    # listed through either, uses counted across both
    second.record(plan, prediction("a" * 32))
    assert first.state()["global"]["uses"] == 1
    assert first.state() == second.state()

    second.reset()
    wait_until(first.idle, what="the reset to reach the other")
    assert first.plan(submit(first)) is None


def test_counts_run_down_across_processes(
    books: tuple[SharedScenarioBook, SharedScenarioBook],
) -> None:
    first, second = books
    first.add({"scope": "next", "count": 2, "fail_code": 1403})
    made = []
    for index, book in enumerate((second, first, second)):
        plan = book.plan(submit(book))
        made.append(None if plan is None else plan.failure_code)
        if plan is not None:
            book.record(plan, prediction(f"{index:032x}"))
    assert made == [1403, 1403, None]  # two in all, whichever process answered
    assert first.state()["next"] == []


def test_a_task_keeps_its_scenario_on_any_process(
    books: tuple[SharedScenarioBook, SharedScenarioBook],
) -> None:
    first, second = books
    first.add({"poll_error_rate": 1.0, "poll_error_statuses": [502]})
    plan = first.plan(submit(first))
    assert plan is not None
    p = prediction("b" * 32)
    first.record(plan, p)
    first.add({"fail_code": 1200})  # a new global: the task keeps its own
    wait_until(lambda: not second.idle(), what="the change to reach the other")
    assert second.poll_fault(p) == (0.0, 502)
    decision = second.route_fault(
        RouteCall(route="result", api_key="k", prediction=p, prediction_id=p.id)
    )
    assert decision.scenario == plan.scenario


def test_seeded_draws_continue_across_processes(
    books: tuple[SharedScenarioBook, SharedScenarioBook],
    database: str,
) -> None:
    """The same seed gives the same draws in the same order of requests, in
    whichever process each request lands."""
    first, second = books
    body = {"poll_error_rate": 0.5, "seed": 11}
    p = prediction("c" * 32, key="k")
    first.add(body)
    wait_until(lambda: not second.idle(), what="the change to reach the other")
    across = [book.poll_fault(p)[1] for book in (first, second) * 6]
    first.reset()

    alone = PostgresStore(database)
    try:
        one = SharedScenarioBook(
            clock=ServerClock(virtual=True, start=1000.0), store=alone, shared=alone
        )
        one.add(body)
        assert [one.poll_fault(p)[1] for _ in range(12)] == across
    finally:
        alone.close()
    assert 0 < across.count(0) < 12  # some polls failed, some did not


def test_a_rate_limit_counts_every_process(
    books: tuple[SharedScenarioBook, SharedScenarioBook],
) -> None:
    first, second = books
    first.add({"per_minute": 1})
    assert first.plan(submit(first)) is not None
    with pytest.raises(ApiError) as refused:
        second.plan(submit(second))
    assert refused.value.status == 429
