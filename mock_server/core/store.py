"""Where predictions live: SQLite in WAL mode, with every row also kept in memory.

Reads (every poll) come from memory; writes go to SQLite behind the request
path (:class:`SQLiteWriter`, committed in batches), so predictions survive a
restart. Nothing else in the server touches the predictions' tables.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .prediction import Prediction
from .sqlite_writer import SQLiteWriter

__all__ = ["PredictionStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    model TEXT NOT NULL,
    api_key TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_created ON predictions (created_at);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_FIELDS = {f.name for f in dataclasses.fields(Prediction)}


class PredictionStore:
    """Create, get, update and list predictions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._rows: dict[str, Prediction] = {}
        self._db = SQLiteWriter(path, _SCHEMA)
        for (body,) in self._db.read(
            "SELECT body FROM predictions ORDER BY created_at"
        ):
            p = _decode(body)
            self._rows[p.id] = p

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, prediction_id: str) -> Prediction | None:
        return self._rows.get(prediction_id)

    def add(self, p: Prediction) -> None:
        with self._lock:
            self._rows[p.id] = p
            self._db.write(
                "INSERT INTO predictions (id, created_at, model, api_key, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (p.id, p.created_at, p.model, p.api_key, _encode(p)),
            )

    def update(self, p: Prediction, **changes: Any) -> None:
        """Apply ``changes`` to ``p`` and persist them together."""
        unknown = set(changes) - _FIELDS
        if unknown:
            raise TypeError(f"Prediction has no field(s) {sorted(unknown)}")
        with self._lock:
            for name, value in changes.items():
                setattr(p, name, value)
            if p.id in self._rows:
                self._db.write(
                    "UPDATE predictions SET body = ? WHERE id = ?", (_encode(p), p.id)
                )

    def all(self) -> list[Prediction]:
        """Every prediction, oldest first."""
        return list(self._rows.values())

    def remove(self, ids: Iterable[str]) -> int:
        with self._lock:
            gone = [i for i in ids if self._rows.pop(i, None) is not None]
            for i in gone:
                self._db.write("DELETE FROM predictions WHERE id = ?", (i,))
            return len(gone)

    def clear(self) -> int:
        with self._lock:
            count = len(self._rows)
            self._rows.clear()
            self._db.write("DELETE FROM predictions")
            return count

    def get_value(self, key: str) -> str | None:
        rows = self._db.read("SELECT value FROM kv WHERE key = ?", (key,))
        return None if not rows else str(rows[0][0])

    def set_value(self, key: str, value: str) -> None:
        self._db.write_now(
            "INSERT INTO kv (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def flush(self) -> None:
        """Wait until every write so far has committed."""
        self._db.flush()

    def close(self) -> None:
        self._db.close()


def _encode(p: Prediction) -> str:
    return json.dumps(vars(p), separators=(",", ":"))


def _decode(body: str) -> Prediction:
    values = json.loads(body)
    return Prediction(**{k: v for k, v in values.items() if k in _FIELDS})
