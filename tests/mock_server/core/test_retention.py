"""Retention's rules and the store's removal: what goes, what stays, what is carried."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from wavespeed_mock.mock_server.core.clock import ServerClock
from wavespeed_mock.mock_server.core.images import ImageLoader
from wavespeed_mock.mock_server.core.keys import key_id
from wavespeed_mock.mock_server.core.renders import RenderQueue
from wavespeed_mock.mock_server.core.retention import (
    ORPHAN_GRACE_S,
    Retention,
    RetentionPolicy,
)
from wavespeed_mock.mock_server.core.store import PredictionStore
from wavespeed_mock.mock_server.core.watch import TerminalWatch

from .._fakes import FakeEngine
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


# -- Retention: the policy applied to a store and its files, without a server --


class Faults:
    """A fault source that records what it was told to forget."""

    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def forget(self, prediction_ids: list[str]) -> None:
        self.forgotten.extend(prediction_ids)


def retention(tmp_path: Path, policy: RetentionPolicy, faults: Faults) -> Retention:
    store = PredictionStore(tmp_path / "state.sqlite3")
    clock = ServerClock(virtual=True, start=1000.0)
    images = ImageLoader(
        data_dir=tmp_path, base_url="http://127.0.0.1:8000", fetcher=None,
        max_pixels=10**7,
    )  # fmt: skip
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    renders = RenderQueue(
        engine=FakeEngine(), store=store, clock=clock, images=images,
        outputs_dir=outputs,
    )  # fmt: skip
    watch = TerminalWatch(
        notifiers=(), clock=clock, renders=renders, describe=lambda p: {}
    )
    return Retention(
        policy, store=store, clock=clock, renders=renders, watch=watch,
        images=images, engine=FakeEngine(), outputs_dir=outputs,
        faults=faults,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_prune_removes_the_oldest_rows_and_their_files(tmp_path: Path) -> None:
    faults = Faults()
    pruner = retention(tmp_path, RetentionPolicy(max_predictions=2), faults)
    items = rows(1, 2, 3, 4)
    asyncio.run(add_all(pruner.store, items))
    for p in items:
        (pruner.outputs_dir / p.output_name).write_bytes(b"clip")

    report = pruner.prune()

    assert (report.predictions, report.outputs) == (2, 2)
    assert [p.id for p in pruner.store.all()] == [items[2].id, items[3].id]
    assert sorted(f.name for f in pruner.outputs_dir.iterdir()) == sorted(
        p.output_name for p in items[2:]
    )
    assert faults.forgotten == [items[0].id, items[1].id]


def test_submits_past_the_bound_are_pruned_once_on_the_loop(tmp_path: Path) -> None:
    async def run() -> None:
        faults = Faults()
        pruner = retention(tmp_path, RetentionPolicy(max_predictions=3), faults)
        pruner.start(asyncio.get_running_loop())
        items = rows(*range(1, 7))
        await add_all(pruner.store, items)
        for _ in items:  # each submit tells it; the prune is made once, later
            pruner.after_submit()
        assert len(pruner.store) == 6
        await asyncio.sleep(0)  # the one scheduled prune runs on the loop
        assert [p.id for p in pruner.store.all()] == [p.id for p in items[3:]]
        assert faults.forgotten == [p.id for p in items[:3]]
        pruner.stop()

    asyncio.run(run())


def test_the_start_sweeps_old_orphan_files_only(tmp_path: Path) -> None:
    async def run() -> None:
        pruner = retention(tmp_path, RetentionPolicy(), Faults())
        kept = rows(1)[0]
        await add_all(pruner.store, [kept])
        old = time.time() - 2 * ORPHAN_GRACE_S
        files = {
            "kept": pruner.outputs_dir / kept.output_name,
            "orphan": pruner.outputs_dir / f"{'f' * 32}.mp4",
            "young orphan": pruner.outputs_dir / f"{'e' * 32}.mp4",
        }
        for name, path in files.items():
            path.write_bytes(b"clip")
            if name != "young orphan":
                os.utime(path, (old, old))
        pruner.start(asyncio.get_running_loop())
        await asyncio.gather(*pruner._background)  # the sweep, on a worker
        assert {n for n, f in files.items() if f.exists()} == {"kept", "young orphan"}

    asyncio.run(run())


def test_a_periodic_pass_is_skipped_while_another_process_holds_it(
    tmp_path: Path,
) -> None:
    """On a shared store the periodic prune runs on one process at a time: a
    pass that cannot take the store's ``retention`` lock removes nothing."""
    import contextlib

    pruner = retention(tmp_path, RetentionPolicy(max_predictions=1), Faults())
    items = rows(1, 2, 3)
    asyncio.run(add_all(pruner.store, items))
    held_elsewhere = contextlib.nullcontext(False)
    pruner.store.exclusive = lambda name: held_elsewhere

    assert asyncio.run(pruner.periodic_pass()) is None
    assert len(pruner.store) == 3

    del pruner.store.exclusive  # the embedded store's own: always this process
    report = asyncio.run(pruner.periodic_pass())
    assert report is not None and report.predictions == 2
