"""The control API's handlers on their own: called with a request, no server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from wavespeed_mock.mock_server.errors import ApiError
from wavespeed_mock.mock_server.http.control import ControlHandlers

from .._support import answer_of, asgi_request, make_server


def test_the_clock_moves_only_once_virtual(tmp_path: Path) -> None:
    control = ControlHandlers(make_server(tmp_path / "data"))
    with pytest.raises(ApiError) as real:
        asyncio.run(control.clock(asgi_request("POST", "/", {"advance": 5})))
    assert real.value.status == 409
    before = answer_of(
        asyncio.run(control.clock(asgi_request("POST", "/", {"virtual": True})))
    )
    after = answer_of(
        asyncio.run(control.clock(asgi_request("POST", "/", {"advance": 5})))
    )
    assert after["clock"]["virtual"] is True
    assert after["clock"]["now"] == pytest.approx(before["clock"]["now"] + 5)


def test_a_profile_that_does_not_exist_is_400_naming_the_field(tmp_path: Path) -> None:
    control = ControlHandlers(make_server(tmp_path / "data"))
    with pytest.raises(ApiError) as refused:
        asyncio.run(control.profile(asgi_request("POST", "/", {"profile": "warp"})))
    assert refused.value.status == 400 and "$.profile" in str(refused.value)
    state = answer_of(
        asyncio.run(control.profile(asgi_request("POST", "/", {"profile": "fast"})))
    )
    assert state["profile"] == "fast"
