"""The write-behind SQLite writer: order, durability at close, errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from wavespeed_mock.mock_server.sqlite_writer import SQLiteWriter

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER);"


def test_reads_see_every_write_queued_before_them(tmp_path: Path) -> None:
    writer = SQLiteWriter(tmp_path / "db.sqlite3", SCHEMA)
    for i in range(500):
        writer.write("INSERT OR REPLACE INTO t VALUES (?, ?)", (f"k{i % 7}", i))
    assert writer.read("SELECT v FROM t WHERE k = 'k0'") == [(497,)]
    assert writer.read("SELECT COUNT(*) FROM t") == [(7,)]
    writer.close()


def test_close_commits_what_was_queued(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    writer = SQLiteWriter(path, SCHEMA)
    for i in range(2000):
        writer.write("INSERT INTO t VALUES (?, ?)", (f"k{i}", i))
    writer.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*), SUM(v) FROM t").fetchone() == (
            2000,
            sum(range(2000)),
        )
    reopened = SQLiteWriter(path, SCHEMA)
    assert reopened.read("SELECT COUNT(*) FROM t") == [(2000,)]
    reopened.close()


def test_a_failing_synchronous_write_raises_and_the_writer_goes_on(
    tmp_path: Path,
) -> None:
    writer = SQLiteWriter(tmp_path / "db.sqlite3", SCHEMA)
    writer.write_now("INSERT INTO t VALUES ('a', 1)")
    with pytest.raises(sqlite3.IntegrityError):
        writer.write_now("INSERT INTO t VALUES ('a', 2)")
    writer.write_now("INSERT INTO t VALUES ('b', 2)")
    assert writer.read("SELECT k FROM t ORDER BY k") == [("a",), ("b",)]
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.read("SELECT 1")
