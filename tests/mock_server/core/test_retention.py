"""Retention's rules and the store's removal: what goes, what stays, what is carried."""

from __future__ import annotations

import asyncio
from pathlib import Path

from wavespeed_mock.mock_server.core.keys import key_id
from wavespeed_mock.mock_server.core.retention import RetentionPolicy
from wavespeed_mock.mock_server.core.store import PredictionStore

from .test_store import add_all, prediction


def rows(*ages: float) -> list:  # type: ignore[type-arg]
    return [prediction(f"{i:032x}", at=at) for i, at in enumerate(ages)]


def test_count_keeps_the_newest() -> None:
    items = rows(1, 2, 3, 4, 5)
    policy = RetentionPolicy(max_predictions=2)
    assert policy.victims(items, 5, now=10) == items[:3]
    assert policy.victims(items, 2, now=10) == []
    assert RetentionPolicy().victims(items, 5, now=10) == []  # 0 keeps all


def test_age_stops_at_the_first_young_prediction() -> None:
    items = rows(1, 2, 8, 9)
    policy = RetentionPolicy(max_age_s=5)
    assert policy.victims(items, 4, now=10) == items[:2]
    # Both rules: the count's excess, then whatever is also too old.
    both = RetentionPolicy(max_predictions=3, max_age_s=5)
    more = rows(1, 2, 3, 9, 9)
    assert both.victims(more, 5, now=10) == more[:3]


def test_a_prune_costs_what_it_removes() -> None:
    seen = []

    def listing():  # type: ignore[no-untyped-def]
        for p in rows(*range(1000)):
            seen.append(p)
            yield p

    RetentionPolicy(max_predictions=995).victims(listing(), 1000, now=0)
    assert len(seen) == 6  # five victims, then the first one kept


def test_the_slack_batches_count_pruning() -> None:
    assert RetentionPolicy(max_predictions=100_000).slack() == 1000
    assert RetentionPolicy(max_predictions=10).slack() == 0


def test_removed_rows_are_gone_after_a_reopen_and_their_spend_stays(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sqlite3"
    store = PredictionStore(path)
    items = [prediction(f"{i:032x}", key="k") for i in range(5)]
    items[0].image_digest = items[1].image_digest = "d" * 64
    asyncio.run(add_all(store, items))
    refunded = {items[1].id}
    gone = store.remove(items[:2] + items[:1], refunded=lambda p: p.id in refunded)
    assert gone == items[:2]  # each once
    assert len(store) == 3
    assert not store.uses_image("d" * 64)
    assert (
        store.carried_spend(key_id("k")) == 150_000
    )  # items[0]; items[1] was refunded
    assert key_id("k") in store.key_ids()
    store.close()

    again = PredictionStore(path)
    assert [p.id for p in again.all()] == [p.id for p in items[2:]]
    assert again.carried_spend(key_id("k")) == 150_000
    assert set(again.charges(key_id("k"))) == {p.id for p in items[2:]}
    again.clear()
    assert again.carried_spend(key_id("k")) == 0 and again.key_ids() == set()
    again.close()
    assert PredictionStore(path).carried_spend(key_id("k")) == 0
