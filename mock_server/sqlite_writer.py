"""Write-behind for SQLite: writes leave the request path and commit in batches.

The server keeps its state in memory and SQLite only has to survive a restart,
so a submit need not wait for its row to commit: writes go onto a queue, and
one thread per database commits whatever has gathered in a single transaction.
``close()`` (and ``flush()``) wait for everything queued. A crash loses at most
the writes of the last few milliseconds.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

__all__ = ["SQLiteWriter"]

log = logging.getLogger("wavespeed_mock.server")

_BATCH = 1000
_Item = tuple[str, tuple[Any, ...], "Future[list[Any]] | None"]


class SQLiteWriter:
    """One connection, owned by one thread, fed by a queue."""

    def __init__(self, path: Path, schema: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
        db.close()
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, name=f"sqlite-writer:{path.name}", daemon=True
        )
        self._thread.start()

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Rows of a query, after every write queued before it."""
        return self._call(sql, params)

    def write(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """Queue a write; it commits with the next batch."""
        self._queue.put((sql, params, None))

    def write_now(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """A write that has committed when this returns."""
        self._call(sql, params)

    def flush(self) -> None:
        self._call("SELECT 1", ())

    def close(self) -> None:
        if self._thread.is_alive():
            self.flush()
            self._queue.put(None)
            self._thread.join(timeout=30)

    def _call(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        if not self._thread.is_alive():
            raise RuntimeError(f"the database {self.path} is closed")
        done: Future[list[Any]] = Future()
        self._queue.put((sql, params, done))
        return done.result(timeout=60)

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                batch = [item]
                stop = False
                while len(batch) < _BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                self._commit(db, batch)
                if stop:
                    return
        finally:
            db.close()

    @staticmethod
    def _commit(db: sqlite3.Connection, batch: list[_Item]) -> None:
        # Runs of the same fire-and-forget statement go through executemany: one
        # C-level loop instead of a Python step per row, so the writer holds the
        # GIL (and delays the event loop) for less time.
        results: list[tuple[Future[list[Any]], list[Any] | BaseException]] = []
        db.execute("BEGIN")
        run_sql = ""
        run: list[tuple[Any, ...]] = []

        def flush_run() -> None:
            if run:
                try:
                    db.executemany(run_sql, run)
                except sqlite3.Error as exc:
                    log.error("SQLite write to %s failed: %s (%s)", db, exc, run_sql)
                run.clear()

        for sql, params, done in batch:
            if done is None:
                if sql != run_sql:
                    flush_run()
                    run_sql = sql
                run.append(params)
                continue
            flush_run()
            run_sql = ""
            try:
                results.append((done, db.execute(sql, params).fetchall()))
            except sqlite3.Error as exc:
                results.append((done, exc))
        flush_run()
        db.execute("COMMIT")
        for done, outcome in results:
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)
