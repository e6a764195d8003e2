"""The store contract, one suite run against both backends: the embedded SQLite
store and PostgreSQL (``WAVESPEED_MOCK_TEST_DATABASE``, a server URL; each test
gets a database of its own). Locally the PostgreSQL half skips without a server;
in CI it may not (``.ci/start-postgres`` starts one)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from wavespeed_mock.contracts import OutputPlan, plan_json
from wavespeed_mock.mock_server.core.pg_store import PG_SCHEMA_VERSION, PostgresStore
from wavespeed_mock.mock_server.core.prediction import Prediction
from wavespeed_mock.mock_server.core.store import (
    Store,
    StoreError,
    open_store,
    prediction_record,
)

from .._support import fresh_database, wait_until
from .test_store import prediction

Opener = Callable[[], Store]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens a store on this test's state; every store it opened is closed after."""
    opened: list[Store] = []
    if request.param == "sqlite":
        url = None
        databases: Iterator[str] | None = None
    else:
        databases = fresh_database(request.getfixturevalue("postgres_server"))
        url = next(databases)

    def open_one() -> Store:
        store = open_store(url, tmp_path)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()
    if databases is not None:
        next(databases, None)  # drop it


def add(store: Store, *items: Prediction, micros: int = 150_000) -> None:
    async def run() -> None:
        for p in items:
            await store.add(p, charge_micros=micros)

    asyncio.run(run())


def ids(items: list[Prediction]) -> list[str]:
    return [p.id for p in items]


def test_what_is_added_and_updated_is_read_back_after_a_reopen(opener: Opener) -> None:
    store = opener()
    items = [prediction(f"{i:032x}", at=100.0 + i) for i in range(3)]
    add(store, *items)
    store.update(items[1], polls=2, rendered_at=101.5, nsfw=[True], device="cuda:3")
    store.update(items[2], failure_code=1405, failure_message="boom")
    store.close()

    again = opener()
    assert len(again) == 3
    assert ids(again.all()) == ids(items)  # oldest first
    assert ids(list(again.oldest())) == ids(items)
    read = again.get(items[1].id)
    assert read is not None
    assert (read.polls, read.rendered_at, read.nsfw) == (2, 101.5, [True])
    assert read.device == "cuda:3"
    failed = again.get(items[2].id)
    assert failed is not None and failed.failure_message == "boom"
    assert read.input == items[1].input and read.created_at == items[1].created_at
    assert again.get("0" * 31 + "f") is None


def test_every_fixed_field_is_read_back_whether_or_not_at_its_default(
    opener: Opener,
) -> None:
    # The row leaves fields at their defaults out (bytes every commit would
    # write); a reopen must restore them, and keep every other value.
    plain = prediction("a" * 32)
    full = dataclasses.replace(
        prediction("b" * 32),
        polls_needed=3,
        follows_engine=True,
        webhook="https://example.com/hook",
        scenario="slow",
        image_digest="d" * 64,
        flag_nsfw=True,
        plan=OutputPlan(
            kind="image", format="png", count=2, width=64, height=64, urls=("u",)
        ),
    )
    default_plan = dataclasses.replace(
        prediction("c" * 32), plan=OutputPlan(kind="video", format="mp4")
    )
    store = opener()
    add(store, plain, full, default_plan)
    store.close()
    again = opener()
    for p in (plain, full, default_plan):
        assert again.get(p.id) == p
    record = json.loads(prediction_record(plain))
    assert not {"webhook", "scenario", "flag_nsfw", "polls_needed"} & set(record)
    assert json.loads(plan_json(OutputPlan(kind="video", format="mp4"))) == {
        "kind": "video",
        "format": "mp4",
    }


def test_an_update_of_a_fixed_field_is_refused(opener: Opener) -> None:
    store = opener()
    p = prediction("a" * 32)
    add(store, p)
    with pytest.raises(TypeError, match="fixed at creation"):
        store.update(p, model="other")


def test_a_removal_carries_the_charge_unless_refunded(opener: Opener) -> None:
    store = opener()
    kept, spent, refunded = (prediction(f"{i:032x}", key="k") for i in range(3))
    refunded.image_digest = "d" * 64
    add(store, kept, spent, refunded)
    assert store.uses_image("d" * 64)

    gone = store.remove([spent, refunded], refunded=lambda p: p is refunded)

    assert sorted(ids(gone)) == sorted([spent.id, refunded.id])
    assert ids(store.all()) == [kept.id]
    assert store.charges(kept.key_id) == {kept.id: 150_000}
    assert store.carried_spend(kept.key_id) == 150_000  # spent's; refunded's is not
    assert store.key_ids() == {kept.key_id}
    assert not store.uses_image("d" * 64)
    assert store.remove([spent], refunded=lambda p: False) == []  # already gone
    assert store.carried_spend(kept.key_id) == 150_000


def test_small_values_by_key_and_prefix(opener: Opener) -> None:
    store = opener()
    store.set_value("ticket:b", "2")
    store.set_value("ticket:a", "1")
    store.set_value("secret:k", "s")
    store.set_value("ticket:a", "one")  # replaced
    assert store.get_value("ticket:a") == "one"
    assert store.values("ticket:") == [("ticket:a", "one"), ("ticket:b", "2")]
    store.delete_values(["ticket:a"])
    assert store.get_value("ticket:a") is None
    assert store.values("ticket:") == [("ticket:b", "2")]


def test_a_clear_forgets_predictions_and_carried_spend_only(opener: Opener) -> None:
    store = opener()
    items = [prediction(f"{i:032x}", key="k") for i in range(2)]
    add(store, *items)
    store.remove(items[:1], refunded=lambda p: False)
    store.set_value("secret:k", "s")

    assert store.clear() == 1

    assert len(store) == 0 and store.all() == []
    assert store.carried_spend(items[0].key_id) == 0
    assert store.key_ids() == set()
    assert store.get_value("secret:k") == "s"


def test_a_walk_oldest_first_crosses_batches(opener: Opener) -> None:
    store = opener()
    items = [prediction(f"{i:032x}", at=float(i)) for i in range(1203)]
    add(store, *items)
    assert ids(list(store.oldest())) == ids(items)


def test_the_count_follows_this_stores_own_changes_at_once(opener: Opener) -> None:
    store = opener()
    items = [prediction(f"{i:032x}") for i in range(3)]
    counts = [len(store)]
    add(store, *items)
    counts.append(len(store))
    store.remove(items[:1], refunded=lambda p: False)
    counts.append(len(store))
    store.clear()
    counts.append(len(store))
    add(store, prediction("e" * 32))
    counts.append(len(store))
    assert counts == [0, 3, 2, 0, 1]


@pytest.mark.postgres
def test_two_processes_share_one_postgresql_state(
    database: str, tmp_path: Path
) -> None:
    """Two stores on one database (as two processes hold): what one writes, the
    other reads at once; nothing is mirrored in memory."""
    url = database
    first, second = open_store(url, tmp_path / "a"), open_store(url, tmp_path / "b")
    try:
        p = prediction("b" * 32, key="shared")
        add(first, p)
        seen = second.get(p.id)
        assert seen is not None and seen is not p
        first.update(p, rendered_at=5.0)
        assert second.get(p.id).rendered_at == 5.0  # type: ignore[union-attr]
        assert len(first) == 1
        second.remove([seen], refunded=lambda _: False)
        assert first.get(p.id) is None
        assert first.carried_spend(p.key_id) == 150_000
        # A count is reused for a moment (retention asks after every submit); the
        # other process's removal shows once it is counted again.
        wait_until(lambda: len(first) == 0, what="the other store's removal counted")
    finally:
        first.close()
        second.close()


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("psycopg", reason="pip install -e '.[test]'")
    with pytest.raises(StoreError, match=r"cannot reach the database postgresql://u@"):
        open_store("postgresql://u:secret@127.0.0.1:1/none?connect_timeout=1", tmp_path)


@pytest.mark.postgres
def test_a_database_of_a_newer_schema_is_refused(database: str, tmp_path: Path) -> None:
    import psycopg

    open_store(database, tmp_path).close()  # creates the schema
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("UPDATE wavespeed_mock_schema SET version = 99")
    with pytest.raises(StoreError, match="schema version 99, newer"):
        open_store(database, tmp_path)


@pytest.mark.postgres
def test_a_database_of_schema_version_1_gets_notified_at(
    database: str, tmp_path: Path
) -> None:
    import psycopg

    store = open_store(database, tmp_path)
    add(store, prediction("f" * 32))
    store.close()
    with psycopg.connect(database, autocommit=True) as db:  # as version 1 left it
        db.execute("ALTER TABLE predictions DROP COLUMN notified_at")
        db.execute("UPDATE wavespeed_mock_schema SET version = 1")
    again = open_store(database, tmp_path)
    try:
        old = again.get("f" * 32)
        assert old is not None and old.notified_at is not None  # taken as sent
        with psycopg.connect(database, autocommit=True) as db:
            row = db.execute("SELECT version FROM wavespeed_mock_schema").fetchone()
        assert row == (PG_SCHEMA_VERSION,)
    finally:
        again.close()


# -- leased work (PostgreSQL: renders and webhooks that survive their process) -----


def _leases(database: str) -> dict[str, float | None]:
    import psycopg

    with psycopg.connect(database, autocommit=True) as db:
        rows = db.execute("SELECT id, work_lease FROM predictions").fetchall()
    return {str(pid): lease for pid, lease in rows}


def taken_soon(store: PostgresStore) -> list[Prediction]:
    """``store.take_over()`` once it takes something: a closed process's
    liveness lock is freed when its backend ends, a moment after the close."""
    taken: list[Prediction] = []

    def took() -> bool:
        taken.extend(store.take_over())
        return bool(taken)

    wait_until(took, timeout_s=60, what="a task taken over")
    return taken


def _run_out(database: str) -> None:
    """Every lease ends now: as if its process stopped renewing (kill -9) a lease ago."""
    import psycopg

    with psycopg.connect(database, autocommit=True) as db:
        db.execute("UPDATE predictions SET work_lease = 0 WHERE work_lease IS NOT NULL")


@pytest.mark.postgres
def test_a_dead_processes_unfinished_work_is_taken_over_by_one_process(
    database: str, tmp_path: Path
) -> None:
    owner, first, second = (PostgresStore(database, lease_s=30) for _ in range(3))
    try:
        unfinished = prediction("a" * 32)  # its render's outcome is not known
        done = prediction("b" * 32)
        done.rendered_at = 101.0  # a cache hit without a webhook: nothing owed
        add(owner, unfinished, done)
        assert _leases(database)[done.id] is None  # never leased
        assert first.take_over() == [] and second.take_over() == []  # leased

        _run_out(database)
        taken = first.take_over() + second.take_over()

        assert ids(taken) == [unfinished.id]  # one of them, once
        assert first.take_over() == [] and second.take_over() == []  # held now
        owner.renew()  # too late: the work has a new owner
        assert first.take_over() == [] and second.take_over() == []
    finally:
        for store in (owner, first, second):
            store.close()


@pytest.mark.postgres
def test_the_work_of_a_process_whose_connection_is_gone_is_taken_at_once(
    database: str, tmp_path: Path
) -> None:
    """A process that dies on a host that lives loses its connections, and with
    them its liveness lock: its work is taken at the next pass, not a lease
    (here 600 s) later."""
    owner, other = (PostgresStore(database, lease_s=600) for _ in range(2))
    try:
        add(owner, prediction("f" * 32))
        assert other.take_over() == []  # alive: its lease holds
        owner.close()  # as a kill -9 does: the database sees the connections go
        # Its backend ends a moment after the socket closes: wait for that.
        assert ids(taken_soon(other)) == ["f" * 32]
        assert other.take_over() == []  # its own now, and alive
    finally:
        owner.close()
        other.close()


@pytest.mark.postgres
def test_a_render_taken_three_times_fails_the_fourth_time(
    database: str, tmp_path: Path
) -> None:
    """A job that kills every process that takes it is not taken for ever: the
    take after the third fails it (code 5000), and a failed task is refunded."""
    from wavespeed_mock.mock_server.core.lifecycle import is_refunded, status_at
    from wavespeed_mock.mock_server.core.pg_store import (
        ATTEMPTS_FAILURE_CODE,
        MAX_ATTEMPTS,
    )

    api = PostgresStore(database, lease_s=600, hands_off=True)  # serve --no-render
    try:
        add(api, prediction("9" * 32))
        for attempt in range(1, MAX_ATTEMPTS + 1):
            worker = PostgresStore(database, lease_s=600)
            [taken] = taken_soon(worker)
            assert not taken.outcome_known, attempt  # rendered again
            worker.close()  # dies before it finishes
        last = PostgresStore(database, lease_s=600)
        try:
            [failed] = taken_soon(last)
            assert failed.failure_code == ATTEMPTS_FAILURE_CODE
            assert "began 3 times" in failed.failure_message
            stored = last.get(failed.id)
            assert stored is not None and stored.failure_code == ATTEMPTS_FAILURE_CODE
            assert status_at(stored, 1e12) == "failed" and is_refunded(stored, 1e12)
        finally:
            last.close()
    finally:
        api.close()


@pytest.mark.postgres
def test_where_each_render_ran_is_kept(database: str, tmp_path: Path) -> None:
    """The process that stores a task renders it: its first attempt; a process
    that takes the render over from a dead one makes the next."""
    first = PostgresStore(database, lease_s=600)
    other = PostgresStore(database, lease_s=600)
    try:
        add(first, prediction("8" * 32))
        assert other.placements() == {"8" * 32: (first.owner, 1)}
        first.close()  # dies before it finishes
        assert ids(taken_soon(other)) == ["8" * 32]
        assert other.placements() == {"8" * 32: (other.owner, 2)}
    finally:
        first.close()
        other.close()


@pytest.mark.postgres
def test_a_webhook_owed_by_a_dead_process_needs_no_free_render_slot(
    database: str, tmp_path: Path
) -> None:
    """A worker whose slots are all busy (a take of at most 0 renders) still
    takes at once the tasks a dead process rendered but had not notified, and
    leaves its unrendered ones to a worker with a free slot."""
    owner = PostgresStore(database, lease_s=600)
    busy = PostgresStore(database, lease_s=600)
    try:
        rendered = dataclasses.replace(
            prediction("4" * 32), webhook="https://example.com/hook", rendered_at=101.0
        )
        add(owner, rendered, prediction("5" * 32))
        owner.close()  # dies owing the first's webhook, the second's render
        wait_until(lambda: ids(busy.take_over(0)) == [rendered.id], what="taken")
        assert ids(busy.take_over(1)) == ["5" * 32]  # a slot: the render too
    finally:
        owner.close()
        busy.close()


@pytest.mark.postgres
def test_a_dead_process_s_render_is_taken_before_older_free_work(
    database: str, tmp_path: Path
) -> None:
    """A render under way when its process died goes to the next free slot,
    ahead of tasks handed off earlier (a worker killed mid-clip has its job
    taken again at once, however long the queue)."""
    api = PostgresStore(database, lease_s=600, hands_off=True)
    owner = PostgresStore(database, lease_s=600)
    worker = PostgresStore(database, lease_s=600)
    try:
        owner.register("worker", "synthetic")
        add(api, prediction("2" * 32))  # free to take, and older
        add(owner, prediction("3" * 32))  # leased to the process that dies
        owner.close()
        wait_until(
            lambda: [p["state"] for p in worker.workers()["processes"]] == ["gone"],
            what="its death seen",  # its backend ends a moment after the socket
        )
        assert ids(worker.take_over(1)) == ["3" * 32]
        assert ids(worker.take_over(1)) == ["2" * 32]
    finally:
        for store in (api, owner, worker):
            store.close()


@pytest.mark.postgres
def test_each_process_is_listed_with_its_devices_and_state(
    database: str, tmp_path: Path
) -> None:
    worker = PostgresStore(database, lease_s=600)
    other = PostgresStore(database, lease_s=600)
    try:
        worker.register("worker", "ovi", ("cuda:0", "cuda:1"))
        other.register("serve", "synthetic")
        add(worker, prediction("6" * 32))  # its render: held by the worker

        def listed() -> dict[str, tuple[list[str], str]]:
            return {
                p["role"]: (p["devices"], p["state"])
                for p in other.workers()["processes"]
            }

        assert listed() == {
            "worker": (["cuda:0", "cuda:1"], "busy"),
            "serve": ([], "idle"),
        }
        worker.close()  # dies holding the render
        wait_until(lambda: listed()["worker"][1] == "gone", what="the death seen")
    finally:
        worker.close()
        other.close()


@pytest.mark.postgres
def test_a_handed_off_task_wakes_the_processes_waiting_for_work(
    database: str, tmp_path: Path
) -> None:
    """A ``--no-render`` server's submit notifies: a worker waiting for work
    takes it at once instead of at its next look."""
    import threading

    worker = PostgresStore(database, lease_s=30)
    api = PostgresStore(database, lease_s=30, hands_off=True)
    woken = threading.Event()
    try:
        worker.on_work(woken.set)
        assert not woken.is_set()
        add(api, prediction("7" * 32))
        assert woken.wait(30), "no notification of the handed-off task"
        assert ids(worker.take_over()) == ["7" * 32]
    finally:
        api.close()
        worker.close()


@pytest.mark.postgres
def test_renewal_extends_a_lease_and_releases_finished_work(
    database: str, tmp_path: Path
) -> None:
    owner = PostgresStore(database, lease_s=30)
    try:
        rendering = prediction("c" * 32)
        owed = prediction("d" * 32)
        owed.webhook = "https://example.com/hook"
        add(owner, rendering, owed)
        before = _leases(database)
        owner.update(owed, rendered_at=101.0)  # rendered; its webhook still owed
        owner.update(rendering, rendered_at=101.0)  # nothing left to do

        owner.renew()

        after = _leases(database)
        assert after[rendering.id] is None  # released
        assert after[owed.id] is not None and after[owed.id] >= before[owed.id]  # type: ignore[operator]
        owner.update(owed, notified_at=102.0)
        owner.renew()
        assert _leases(database)[owed.id] is None
    finally:
        owner.close()


@pytest.mark.postgres
def test_a_stop_hands_its_unfinished_work_over_at_once(
    database: str, tmp_path: Path
) -> None:
    owner = PostgresStore(database, lease_s=30)
    other = PostgresStore(database, lease_s=30)
    try:
        add(owner, prediction("e" * 32))
        assert other.take_over() == []
        owner.release()  # a graceful stop: no wait for the 30 s lease
        assert ids(other.take_over()) == ["e" * 32]
    finally:
        owner.close()
        other.close()


@pytest.mark.postgres
def test_a_database_of_schema_version_2_frees_what_it_left_unfinished(
    database: str, tmp_path: Path
) -> None:
    import psycopg

    store = PostgresStore(database, lease_s=30)
    finished = prediction("f" * 32)
    finished.rendered_at = 101.0
    add(store, prediction("1" * 32), finished)
    store.close()
    with psycopg.connect(database, autocommit=True) as db:  # as version 2 left it
        db.execute("ALTER TABLE predictions DROP COLUMN owner, DROP COLUMN work_lease")
        db.execute("UPDATE wavespeed_mock_schema SET version = 2")
    again = PostgresStore(database, lease_s=30)
    try:
        assert ids(again.take_over()) == ["1" * 32]  # unfinished: free at once
    finally:
        again.close()


@pytest.mark.postgres
def test_periodic_work_runs_on_one_process_at_a_time(
    database: str, tmp_path: Path
) -> None:
    first, second = (PostgresStore(database) for _ in range(2))
    try:
        with first.exclusive("retention") as mine:
            assert mine
            with second.exclusive("retention") as theirs:
                assert not theirs  # tried, not waited for
            with second.exclusive("cache") as other_work:
                assert other_work  # another name, another lock
        with second.exclusive("retention") as now_theirs:
            assert now_theirs  # freed at the end of the first block
    finally:
        first.close()
        second.close()
