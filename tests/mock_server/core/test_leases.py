"""The lease loop (``core/leases.py``) without a database: what one pass takes."""

from __future__ import annotations

import asyncio
from typing import Any

from wavespeed_mock.mock_server.core.leases import TAKE_AT_MOST, WorkLeases

from .test_store import prediction as make_prediction


class FakeStore:
    lease_s = 3.0

    def __init__(self, free: int) -> None:
        self.free = [make_prediction(f"{n:032x}") for n in range(free)]
        self.limits: list[int] = []

    def renew(self) -> None:
        return None

    def take_over(self, limit: int = 100) -> list[Any]:
        self.limits.append(limit)
        taken, self.free = self.free[:limit], self.free[limit:]
        return taken

    def release(self) -> None:
        return None


class FakeRenders:
    def __init__(self) -> None:
        self.queued: list[str] = []

    def __len__(self) -> int:
        return len(self.queued)

    def queue(self, p: Any, image: Any) -> None:
        self.queued.append(p.id)


class FakeWatch:
    def wants(self, p: Any) -> bool:
        return False


def leases(store: FakeStore, renders: FakeRenders, **options: Any) -> WorkLeases:
    return WorkLeases(store, renders=renders, watch=FakeWatch(), **options)  # type: ignore[arg-type]


def test_a_worker_takes_only_what_its_free_slots_allow() -> None:
    store, renders = FakeStore(free=5), FakeRenders()
    worker = leases(store, renders)
    worker.slots = 2  # an engine that renders two at once
    asyncio.run(worker.pass_once())
    assert len(renders.queued) == 2 and store.limits == [2]
    asyncio.run(worker.pass_once())  # both still rendering: no render taken
    assert len(renders.queued) == 2 and store.limits == [2, 0]
    renders.queued.pop()  # one finished
    asyncio.run(worker.pass_once())
    assert len(renders.queued) == 2 and store.limits == [2, 0, 1]
    assert len(store.free) == 2  # left for other workers


def test_a_server_takes_over_everything_and_an_api_server_nothing() -> None:
    store, renders = FakeStore(free=5), FakeRenders()
    asyncio.run(leases(store, renders).pass_once())
    assert store.limits == [TAKE_AT_MOST] and len(renders.queued) == 5
    api = FakeStore(free=5)
    asyncio.run(leases(api, FakeRenders(), takes_work=False).pass_once())
    assert api.limits == []  # serve --no-render: the workers take it
