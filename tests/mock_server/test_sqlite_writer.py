"""The write-behind SQLite writer: order, durability at close, errors."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest
from wavespeed_mock.mock_server.core import sqlite_writer
from wavespeed_mock.mock_server.core.sqlite_writer import SQLiteWriter, _write_run

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


def test_a_run_of_single_row_inserts_is_written_as_multi_row_statements() -> None:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(SCHEMA)
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    rows = [(f"k{i}", i) for i in range(1200)]
    _write_run(db, "INSERT INTO t VALUES (?, ?)", rows)
    assert rows == []  # the run is emptied
    # 999 parameters at most per statement: 499 two-column rows.
    assert len(statements) == 3
    assert db.execute("SELECT COUNT(*), SUM(v) FROM t").fetchone() == (
        1200,
        sum(range(1200)),
    )


def test_a_bad_row_keeps_the_rows_before_it_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = SQLiteWriter(tmp_path / "db.sqlite3", SCHEMA)
    for key in ("a", "b", "a", "c"):
        writer.write("INSERT INTO t VALUES (?, ?)", (key, 1))
    writer.write("INSERT OR IGNORE INTO t VALUES (?, ?)", ("d", 1))  # the next run
    assert writer.read("SELECT k FROM t ORDER BY k") == [("a",), ("b",), ("d",)]
    writer.close()
    assert "UNIQUE constraint failed" in caplog.text


def test_synchronous_calls_cut_the_gather_window_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_writer, "_GATHER_S", 30.0)
    writer = SQLiteWriter(tmp_path / "db.sqlite3", SCHEMA)
    started = time.monotonic()
    writer.write("INSERT INTO t VALUES (?, ?)", ("a", 1))
    assert writer.read("SELECT v FROM t") == [(1,)]
    writer.close()
    assert time.monotonic() - started < 20  # not the 30 s window


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's"
)
def test_the_writer_thread_yields_the_core_to_the_event_loop(tmp_path: Path) -> None:
    writer = SQLiteWriter(tmp_path / "db.sqlite3", SCHEMA)
    writer.flush()  # the thread has started and set its priority
    thread_id = writer._thread.native_id
    assert thread_id is not None
    assert os.getpriority(os.PRIO_PROCESS, thread_id) >= 10
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < 10
    writer.close()
