"""The account's handlers on their own: called with a request and a key, no
server, no sockets (the routes only bind them and check the key)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from wavespeed_mock.mock_server.errors import ApiError
from wavespeed_mock.mock_server.features.account import AccountHandlers

from ..._support import answer_of, asgi_request, make_server


def handlers(tmp_path: Path, **options: Any) -> AccountHandlers:
    server = make_server(tmp_path / "data", **options)
    assert server.features.account is not None
    return AccountHandlers(server.features.account, server.service)


def test_the_price_of_a_model_from_its_inputs(tmp_path: Path) -> None:
    account = handlers(tmp_path)
    body = {"model_id": "character-ai/ovi/text-to-video", "inputs": {"prompt": "x"}}
    priced = answer_of(asyncio.run(account.price(asgi_request("POST", "/", body), "k")))
    assert priced["model_id"] == body["model_id"] and priced["price"] == 0.15
    with pytest.raises(ApiError) as unknown:
        asyncio.run(
            account.price(asgi_request("POST", "/", {"model_id": "no/such"}), "k")
        )
    assert unknown.value.status == 404


def test_a_new_keys_balance_is_the_starting_balance(tmp_path: Path) -> None:
    account = handlers(tmp_path, starting_balance=7.5)
    balance = answer_of(
        asyncio.run(account.balance(asgi_request("GET", "/"), "any-key"))
    )
    assert balance == {"balance": 7.5, "currency": "USD"}
