"""The scenario book on its own: one choice per request, plans as plain data."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wavespeed_mock.contracts import get_model
from wavespeed_mock.mock_server.core.clock import ServerClock
from wavespeed_mock.mock_server.core.components import RouteCall, SubmitRequest
from wavespeed_mock.mock_server.core.keys import key_id
from wavespeed_mock.mock_server.core.store import PredictionStore
from wavespeed_mock.mock_server.errors import ApiError
from wavespeed_mock.mock_server.features.scenarios.book import ScenarioBook

T2V = get_model("character-ai/ovi/text-to-video")


@pytest.fixture
def book(tmp_path: Path) -> Iterator[ScenarioBook]:
    store = PredictionStore(tmp_path / "state.sqlite3")
    yield ScenarioBook(clock=ServerClock(virtual=True, start=1000.0), store=store)
    store.close()


def submit(book: ScenarioBook, **fields: Any) -> SubmitRequest:
    """A submit as the HTTP layer makes it: through the wire layer's decision."""
    call = RouteCall(route="submit", api_key="k", scenario=fields.get("scenario"))
    decided = book.route_fault(call)
    return SubmitRequest(
        model=T2V, body={"prompt": "p"}, api_key="k", decided=decided, **fields
    )


def test_a_submit_is_planned_from_the_edges_choice_without_choosing_again(
    book: ScenarioBook, monkeypatch: pytest.MonkeyPatch
) -> None:
    book.add({"fail_code": 5003})
    request = submit(book)
    assert request.decided is not None and request.decided.scenario is not None

    def chose_again(*args: object) -> None:
        raise AssertionError("the scenario was chosen a second time")

    monkeypatch.setattr(book, "_choose", chose_again)
    plan = book.plan(request)
    assert plan is not None and plan.failure_code == 5003


def test_the_plan_is_plain_data_and_record_counts_one_use(book: ScenarioBook) -> None:
    scenario = book.add({"scope": "next", "count": 2, "fail_code": 1403})
    plan = book.plan(submit(book))
    assert plan is not None
    assert (plan.scenario, plan.key_id, plan.reserved_at) == (
        scenario.serial,
        key_id("k"),
        None,
    )
    assert scenario.uses == 0  # counted only once the task exists

    class Row:
        id = "p1"

    book.record(plan, Row())  # type: ignore[arg-type]
    assert scenario.uses == 1
    assert book.by_prediction["p1"] is scenario
    assert book.state()["next"][0]["count"] == 1


def test_a_scenario_cleared_after_the_edge_chose_it_plans_nothing(
    book: ScenarioBook,
) -> None:
    book.add({"fail_code": 5003})
    request = submit(book)
    book.reset()
    gc.collect()  # the book holds scenarios weakly by serial
    assert book.plan(request) is None


def test_abandon_gives_back_the_rate_limit_slot(book: ScenarioBook) -> None:
    book.add({"per_minute": 1})
    plan = book.plan(submit(book))
    assert plan is not None and plan.reserved_at is not None
    with pytest.raises(ApiError) as refused:
        book.plan(submit(book))
    assert refused.value.status == 429
    book.abandon(plan)
    assert book.plan(submit(book)) is not None  # the slot was free again


def test_an_unknown_named_scenario_is_refused_at_the_edge(book: ScenarioBook) -> None:
    with pytest.raises(ApiError) as refused:
        book.route_fault(RouteCall(route="submit", api_key="k", scenario="nope"))
    assert refused.value.status == 400 and "'nope'" in refused.value.message


def test_a_submit_without_an_edge_decision_is_chosen_for_in_plan(
    book: ScenarioBook,
) -> None:
    book.add({"fail_code": 1200})
    plan = book.plan(SubmitRequest(model=T2V, body={"prompt": "p"}, api_key="k"))
    assert plan is not None and plan.failure_code == 1200


def test_a_gateway_fault_on_polls_leaves_submits_alone(book: ScenarioBook) -> None:
    book.add({"gateway_error": 503, "routes": ["result"]})
    assert submit(book).decided is not None
    assert submit(book).decided.fault is None  # type: ignore[union-attr]
    poll = book.route_fault(RouteCall(route="result", api_key="k", prediction_id="x"))
    assert poll.fault is not None and poll.fault.status == 503
