"""The request journal's keeping: what each client asked and what it was answered.

``http/journal.py`` (the middleware) makes one entry per request, before its
answer leaves; this module keeps them. :class:`Journal` keeps the newest in
this process's memory (the default). :class:`SharedJournal` keeps them in a
shared store (``--database``), so ``GET /_mock/journal`` through any process
lists the requests every process answered: an entry is committed before its
answer leaves, so a client that has its answer finds the request in the
journal through any process.

The shared journal commits in groups: the entries of the requests answered
while one commit runs wait together for the next, one ``INSERT`` for all of
them (at 16 connections a commit carries several requests; at one connection
each request pays one round trip to the database).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable
from typing import Any

from .store import LogStore

__all__ = ["Journal", "SharedJournal"]

log = logging.getLogger("wavespeed_mock.server")


class Journal:
    """The newest ``size`` entries, in this process's memory."""

    def __init__(self, size: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)

    def append(self, entry: dict[str, Any]) -> Awaitable[None] | None:
        """Keep ``entry``; nothing to wait for."""
        self._entries.append(entry)
        return None

    def entries(self) -> list[dict[str, Any]]:
        """The entries, oldest first."""
        return list(self._entries)

    def clear(self) -> None:
        self._entries.clear()


class _Group:
    def __init__(self) -> None:
        self.entries: list[tuple[str | None, str]] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class SharedJournal:
    """The newest ``size`` entries in a shared store's logs, committed in groups."""

    KIND = "journal"

    def __init__(self, store: LogStore, size: int) -> None:
        self.store = store
        self.size = size
        self._open: _Group | None = None  # filling while the previous commit runs
        self._committing: asyncio.Lock | None = None

    def append(self, entry: dict[str, Any]) -> Awaitable[None] | None:
        """Queue ``entry`` for the next commit; await the result before answering."""
        if self.size == 0:
            return None
        group = self._open
        if group is None:
            group = self._open = _Group()
            asyncio.get_running_loop().create_task(self._commit(group))
        group.entries.append((None, json.dumps(entry, separators=(",", ":"))))
        return asyncio.shield(group.done)

    async def _commit(self, group: _Group) -> None:
        if self._committing is None:
            self._committing = asyncio.Lock()
        async with self._committing:
            if self._open is group:
                self._open = None  # later entries start the next group
            try:
                await self.store.log_extend(self.KIND, group.entries, self.size)
            except Exception as exc:  # the answers still leave; say what was lost
                log.error("journal: %d entries not kept: %s", len(group.entries), exc)
            group.done.set_result(None)

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(e) for e in self.store.log_read(self.KIND, newest=self.size)]

    def clear(self) -> None:
        self.store.log_clear(self.KIND)
