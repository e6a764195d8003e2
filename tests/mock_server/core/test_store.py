"""The store: what it commits survives a reopen; an old data folder is migrated."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from wavespeed_mock.mock_server import Prediction
from wavespeed_mock.mock_server.core.keys import key_id
from wavespeed_mock.mock_server.core.store import PredictionStore


def prediction(pid: str, *, at: float = 100.0, key: str = "k") -> Prediction:
    return Prediction(
        id=pid,
        model="character-ai/ovi/text-to-video",
        input={"prompt": "waves", "seed": 1},
        seed_requested=1,
        seed=1,
        created_at=at,
        profile="fast",
        start_at=at + 0.3,
        done_at=at + 2.3,
        key_id=key_id(key),
    )


async def add_all(store: PredictionStore, items: list[Prediction]) -> None:
    # Concurrent adds: they share commits, and each returns only once committed.
    await asyncio.gather(*(store.add(p, charge_micros=150_000) for p in items))


def test_added_and_updated_rows_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = PredictionStore(path)
    items = [prediction(f"{i:032x}", at=100.0) for i in range(50)]  # one frozen time
    asyncio.run(add_all(store, items))
    store.update(items[3], polls=2, rendered_at=101.5, nsfw=[True])
    store.update(items[4], failure_code=1405, failure_message="boom")
    store.close()

    again = PredictionStore(path)
    assert [p.id for p in again.all()] == [p.id for p in items]  # creation order
    assert again.get(items[3].id) == items[3]
    assert again.get(items[4].id) == items[4]
    assert again.charges(key_id("k")) == {p.id: 150_000 for p in items}
    again.close()


def test_an_add_returns_only_after_its_commit(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = PredictionStore(path)
    p = prediction("a" * 32)

    async def add_then_read() -> list[tuple[str, int]]:
        await store.add(p, charge_micros=150_000)
        # Another connection sees the row and its charge at once: committed.
        with sqlite3.connect(path) as other:
            return other.execute("SELECT id, charge_micros FROM predictions").fetchall()

    assert asyncio.run(add_then_read()) == [(p.id, 150_000)]
    store.close()


def test_an_update_writes_only_fields_that_change(tmp_path: Path) -> None:
    store = PredictionStore(tmp_path / "state.sqlite3")
    p = prediction("b" * 32)
    asyncio.run(add_all(store, [p]))
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # the one connection it writes on
    store.update(p, polls=3)  # no event loop attached: written at once
    [update] = [s for s in statements if s.startswith("UPDATE")]
    assert update.startswith("UPDATE predictions SET polls = 3 WHERE")
    with pytest.raises(TypeError, match="fixed at creation"):
        store.update(p, model="other")
    store.close()


def test_a_data_folder_of_version_0_1_is_migrated(tmp_path: Path) -> None:
    old = prediction("c" * 32)
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        db.executescript(
            "CREATE TABLE predictions (id TEXT PRIMARY KEY, created_at REAL NOT NULL,"
            " model TEXT NOT NULL, api_key TEXT NOT NULL, body TEXT NOT NULL);"
            "CREATE INDEX predictions_created ON predictions (created_at);"
            "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        )
        # Version 0.1 kept the key itself.
        body = {**vars(old), "rendered_at": 101.0, "api_key": "k"}
        del body["key_id"], body["key_hint"]
        db.execute(
            "INSERT INTO predictions VALUES (?, ?, ?, ?, ?)",
            (old.id, old.created_at, old.model, "k", json.dumps(body)),
        )
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:
        db.execute(
            "CREATE TABLE charges (prediction_id TEXT PRIMARY KEY, api_key TEXT,"
            " model TEXT, amount_micros INTEGER, created_at REAL)"
        )
        db.execute("INSERT INTO charges VALUES (?, 'k', 'm', 150000, 100.0)", (old.id,))

    store = PredictionStore(tmp_path / "state.sqlite3")
    migrated = store.get(old.id)
    assert migrated is not None and migrated.rendered_at == 101.0
    assert store.charges(key_id("k")) == {old.id: 150_000}
    assert migrated.key_id == key_id("k")
    assert migrated.notified_at is not None  # its webhook is not sent again
    store.close()


def stored_as_version(path: Path, version: int, lacking: str) -> PredictionStore:
    """A data folder with one prediction (``"d" * 32``) as schema ``version``
    left it, without the column ``lacking``, opened again."""
    store = PredictionStore(path)
    asyncio.run(add_all(store, [prediction("d" * 32)]))
    store.close()
    with sqlite3.connect(path) as db:
        db.execute(f"ALTER TABLE predictions DROP COLUMN {lacking}")
        db.execute(f"PRAGMA user_version = {version}")
    return PredictionStore(path)


def reopened_at_the_newest_version(path: Path) -> PredictionStore:
    store = PredictionStore(path)
    (version,) = store._db.execute("PRAGMA user_version").fetchone()
    assert version == 5
    return store


def test_a_data_folder_of_schema_version_3_gets_notified_at(tmp_path: Path) -> None:
    again = stored_as_version(tmp_path / "state.sqlite3", 3, "notified_at")
    old = again.get("d" * 32)
    assert old is not None and old.notified_at is not None  # taken as sent
    p = prediction("e" * 32)
    asyncio.run(add_all(again, [p]))
    assert p.notified_at is None  # a new one owes its webhook until it is sent
    again.update(p, notified_at=5.0)
    again.close()
    third = reopened_at_the_newest_version(tmp_path / "state.sqlite3")
    assert third.get("e" * 32).notified_at == 5.0  # type: ignore[union-attr]
    third.close()


def test_a_data_folder_of_schema_version_4_gets_the_device(tmp_path: Path) -> None:
    again = stored_as_version(tmp_path / "state.sqlite3", 4, "device")
    old = again.get("d" * 32)
    assert old is not None and old.device is None
    again.update(old, device="cuda:1")
    again.close()
    third = reopened_at_the_newest_version(tmp_path / "state.sqlite3")
    assert third.get("d" * 32).device == "cuda:1"  # type: ignore[union-attr]
    third.close()
