"""The journal's keeping (``core/journal.py``), without a server or a database."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from wavespeed_mock.mock_server.core.journal import Journal, SharedJournal


class FakeLog:
    """A shared store's logs in a list; each ``log_extend`` one commit, which
    waits on ``gate`` so that a test can hold it while more entries arrive."""

    def __init__(self, fail: bool = False) -> None:
        self.rows: list[str] = []
        self.commits: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = fail

    async def log_extend(
        self, kind: str, entries: list[tuple[str | None, str]], keep: int
    ) -> None:
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("the database is gone")
        self.commits.append(len(entries))
        self.rows = (self.rows + [text for _, text in entries])[-keep:]

    def log_read(
        self, kind: str, subject: str | None = None, newest: int | None = None
    ) -> list[str]:
        return self.rows[-newest:] if newest else list(self.rows)

    def log_clear(self, kind: str) -> int:
        count, self.rows = len(self.rows), []
        return count


def test_the_memory_journal_keeps_the_newest() -> None:
    journal = Journal(2)
    for n in range(3):
        assert journal.append({"n": n}) is None  # nothing to wait for
    assert journal.entries() == [{"n": 1}, {"n": 2}]
    journal.clear()
    assert journal.entries() == []


def test_entries_answered_during_a_commit_share_the_next_one() -> None:
    async def scenario() -> FakeLog:
        store = FakeLog()
        journal = SharedJournal(store, size=100)
        store.gate.clear()  # the first commit is held...
        first = journal.append({"n": 0})
        assert first is not None
        await asyncio.sleep(0)  # ...once it has started
        later = [journal.append({"n": n}) for n in range(1, 6)]
        assert all(
            not w.done() for w in [first, *later] if isinstance(w, asyncio.Future)
        )
        store.gate.set()
        await asyncio.gather(first, *(w for w in later if w is not None))
        assert [e["n"] for e in journal.entries()] == [0, 1, 2, 3, 4, 5]
        return store

    store = asyncio.run(scenario())
    assert store.commits == [1, 5]  # one commit for the five that waited


def test_a_failed_commit_lets_the_answers_go_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        journal = SharedJournal(FakeLog(fail=True), size=10)
        waits: list[Any] = [journal.append({"n": n}) for n in range(3)]
        await asyncio.wait_for(asyncio.gather(*waits), timeout=30)

    with caplog.at_level(logging.ERROR, logger="wavespeed_mock.server"):
        asyncio.run(scenario())
    assert "journal: 3 entries not kept: the database is gone" in caplog.text


def test_a_journal_of_size_zero_keeps_nothing() -> None:
    async def scenario() -> list[Any]:
        journal = SharedJournal(FakeLog(), size=0)
        assert journal.append({"n": 0}) is None
        return journal.entries()

    assert asyncio.run(scenario()) == []
