"""The account's queries and deletes, driven on the service without an app."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from wavespeed_mock.contracts import get_model
from wavespeed_mock.mock_server import Settings, SubmitRequest, build_server
from wavespeed_mock.mock_server.core.keys import key_id
from wavespeed_mock.mock_server.core.service import MockService
from wavespeed_mock.mock_server.features.account.history import (
    billing_page,
    history_page,
)

from ..._fakes import FakeEngine

T2V = get_model("character-ai/ovi/text-to-video")


def on_service(tmp_path: Path, run: Callable[[MockService], Awaitable[Any]]) -> Any:
    server = build_server(
        Settings(data_dir=tmp_path, profile="instant", virtual_clock=True),
        engine=FakeEngine(),
    )

    async def go() -> Any:
        server.service.start()
        try:
            return await run(server.service)
        finally:
            await server.service.aclose()

    return asyncio.run(go())


async def submit(service: MockService, key: str, seed: int) -> str:
    request = SubmitRequest(model=T2V, body={"prompt": "p", "seed": seed}, api_key=key)
    return (await service.submit(request)).prediction.id


def test_history_is_the_keys_own_newest_first_and_paged(tmp_path: Path) -> None:
    async def run(service: MockService) -> None:
        mine = []
        for seed in range(3):
            mine.append(await submit(service, "mine", seed))
            service.clock.advance(1)
        await submit(service, "theirs", 9)
        page = history_page(service, key_id("mine"), {"page": 1, "page_size": 2})
        assert page["total"] == 3
        assert [item["id"] for item in page["items"]] == mine[::-1][:2]
        rest = history_page(service, key_id("mine"), {"page": 2, "page_size": 2})
        assert [item["id"] for item in rest["items"]] == [mine[0]]

    on_service(tmp_path, run)


def test_delete_is_per_key_once_and_leaves_history_and_the_bill_agreeing(
    tmp_path: Path,
) -> None:
    async def run(service: MockService) -> None:
        mine = await submit(service, "mine", 1)
        theirs = await submit(service, "theirs", 2)
        assert service.delete_for(key_id("mine"), [theirs, "nope", mine, mine]) == 1
        assert service.delete_for(key_id("mine"), [mine]) == 0  # once
        assert history_page(service, key_id("mine"), {})["total"] == 0
        assert (
            history_page(service, key_id("mine"), {"status": "deleted"})["total"] == 1
        )
        assert service.status(service.get(theirs)) != "deleted"
        assert not (service.outputs_dir / f"{mine}.mp4").exists()

    on_service(tmp_path, run)


def test_the_bill_lists_the_keys_charges(tmp_path: Path) -> None:
    async def run(service: MockService) -> dict[str, Any]:
        from wavespeed_mock.mock_server.features.account.ledger import Account

        pid = await submit(service, "mine", 1)
        await submit(service, "theirs", 2)
        account = next(a for a in service.admissions if isinstance(a, Account))
        return {"pid": pid, "page": billing_page(account, service, key_id("mine"), {})}

    got = on_service(tmp_path, run)
    rows = got["page"]["items"]
    assert [row["prediction"]["uuid"] for row in rows] == [got["pid"]]
    assert rows[0]["price"] == T2V.price_for()


def test_key_hints_mask_every_key_the_store_knows(tmp_path: Path) -> None:
    async def run(service: MockService) -> dict[str, str]:
        await submit(service, "wsk_live_0123456789abcdef", 1)
        return service.key_hints()

    hints = on_service(tmp_path, run)
    assert list(hints) == [key_id("wsk_live_0123456789abcdef")]
    assert "0123456789" not in next(iter(hints.values()))
