"""Bounded logs a test reads back: in this process's memory, or in a shared
store's ``logs`` table (``--database``), where every process reads what any
process recorded. The webhook attempt log and the playground inbox keep their
entries in one of these (the journal, written on every request, commits in
groups: ``core/journal.py``). Entries are JSON objects; the subject they are
found by is their ``prediction_id``."""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Any

from .store import LogStore

__all__ = ["MemoryLog", "SharedLog"]


class MemoryLog:
    """The newest ``size`` entries, in this process's memory."""

    def __init__(self, size: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self, prediction_id: str | None = None) -> list[dict[str, Any]]:
        """Copies of the entries, oldest first, optionally one prediction's."""
        with self._lock:
            return [
                dict(e)
                for e in self._entries
                if prediction_id is None or e.get("prediction_id") == prediction_id
            ]

    def clear(self) -> int:
        """Empty it; how many entries it held."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count

    def __len__(self) -> int:
        return len(self._entries)


class SharedLog:
    """The newest ``size`` entries of the log ``kind`` in a shared store."""

    def __init__(self, store: LogStore, kind: str, size: int) -> None:
        self.store = store
        self.kind = kind
        self.size = size

    def record(self, entry: dict[str, Any]) -> None:
        text = json.dumps(entry, separators=(",", ":"))
        self.store.log_append(self.kind, entry.get("prediction_id"), text, self.size)

    def entries(self, prediction_id: str | None = None) -> list[dict[str, Any]]:
        """The entries, oldest first, optionally one prediction's."""
        return [json.loads(e) for e in self.store.log_read(self.kind, prediction_id)]

    def clear(self) -> int:
        return self.store.log_clear(self.kind)
