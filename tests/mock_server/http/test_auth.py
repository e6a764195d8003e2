"""The Bearer check, declared once for a feature's routes (no server)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from wavespeed_mock.mock_server.errors import ApiError
from wavespeed_mock.mock_server.http.auth import Authenticator


def request(authorization: str | None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return Request({"type": "http", "method": "GET", "path": "/x", "headers": headers})


async def echo(request: Request, api_key: str) -> Response:
    return PlainTextResponse(api_key)


def call(auth: Authenticator, authorization: str | None) -> str:
    (route,) = auth.routes([("/x", echo, "GET")])
    assert isinstance(route, Route) and route.methods == {"GET", "HEAD"}
    response = asyncio.run(route.endpoint(request(authorization)))
    return bytes(response.body).decode()


def test_the_endpoint_gets_the_checked_key() -> None:
    assert call(Authenticator(), "Bearer any-key") == "any-key"
    assert call(Authenticator(("known",)), "Bearer known") == "known"


@pytest.mark.parametrize(
    ("accepted", "authorization"),
    [((), None), ((), "Bearer "), ((), "Basic a2V5"), (("known",), "Bearer other")],
)
def test_a_request_without_an_accepted_key_never_reaches_the_endpoint(
    accepted: tuple[str, ...], authorization: str | None
) -> None:
    with pytest.raises(ApiError) as caught:
        call(Authenticator(accepted), authorization)
    assert caught.value.status == 401
