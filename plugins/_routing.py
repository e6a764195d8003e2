"""In-process routing of httpx to the mock app, for sync and async clients alike.

respx's own ASGI handler only serves async clients (a sync ``httpx.Client`` gets
an un-awaited coroutine), so the app runs in one anyio blocking portal, started
with its lifespan, and a plain (sync) respx side effect hands each request to it.
Starlette's TestClient is avoided because it warns on import.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import respx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ..mock_server.assembly import MockServer, build_server
from ..mock_server.http.app import create_app
from ..mock_server.settings import Settings
from ._renders import wait_for_renders
from .verification import Received

__all__ = [
    "API_BASE_URL",
    "InProcessApp",
    "InProcessRouter",
    "route_httpx",
    "serve_in_process",
]

API_BASE_URL = "https://api.wavespeed.ai"


class InProcessRouter(Received):
    """The handle the ``wavespeed_httpx`` fixture yields."""

    def __init__(
        self,
        router: respx.MockRouter,
        route: respx.Route,
        server: MockServer,
    ) -> None:
        self.router = router
        self.route = route
        self.mock = server
        self.service = server.service
        self.base_url = API_BASE_URL

    @property
    def calls(self) -> respx.models.CallList:
        """Every request routed to the mock (not those passed through), with its response."""
        return self.route.calls

    def reset(self) -> None:
        self.mock.reset()

    def wait_for_renders(self, timeout: float = 120.0) -> None:
        """Return once every render queued so far has finished or failed."""
        wait_for_renders(self.service, timeout)

    def scenario(self, scope: str = "global", **fields: Any) -> dict[str, Any]:
        """Set a scenario (as ``wavespeed_server.scenario``); connection faults
        need a live server and are skipped here."""
        from ._scenarios import set_scenario

        return set_scenario(self.mock, scope, **fields)


def _handler(app: Any, portal: BlockingPortal) -> Any:
    async def send(request: httpx.Request, body: bytes) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=API_BASE_URL
        ) as client:
            forwarded = client.build_request(
                request.method, str(request.url), headers=request.headers, content=body
            )
            response = await client.send(forwarded)
            content = await response.aread()
        return httpx.Response(
            response.status_code,
            headers=[
                (k, v)
                for k, v in response.headers.multi_items()
                if k.lower() not in ("content-length", "transfer-encoding")
            ],
            content=content,
        )

    def side_effect(request: httpx.Request) -> httpx.Response:
        body = request.read()
        return portal.call(send, request, body)

    return side_effect


class InProcessApp:
    """The mock app running in process (with its lifespan), ready to answer httpx.

    :meth:`routing` sends httpx calls to it for the length of a ``with`` block; the
    ``wavespeed_session_httpx`` fixture hands this out so that a Hypothesis test
    routes each example itself.
    """

    def __init__(self, server: MockServer, app: Any, portal: BlockingPortal) -> None:
        self.mock = server
        self.service = server.service
        self._app = app
        self._portal = portal

    def reset(self) -> None:
        """Forget every prediction (see :meth:`MockServer.reset`)."""
        self.mock.reset()

    @contextlib.contextmanager
    def routing(self) -> Iterator[InProcessRouter]:
        """Answer httpx requests to api.wavespeed.ai in this block; others pass."""
        with respx.mock(assert_all_called=False, assert_all_mocked=False) as router:
            route = router.route(host="api.wavespeed.ai").mock(
                side_effect=_handler(self._app, self._portal)
            )
            router.route().pass_through()
            yield InProcessRouter(router, route, self.mock)


@contextlib.contextmanager
def serve_in_process(settings: Settings) -> Iterator[InProcessApp]:
    """Start the mock app in process, under the API's own base URL."""
    settings = settings.replace(public_url=API_BASE_URL)
    server = build_server(settings)
    app = create_app(server=server)
    with start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(app.router.lifespan_context(app)):
            yield InProcessApp(server, app, portal)


@contextlib.contextmanager
def route_httpx(settings: Settings) -> Iterator[InProcessRouter]:
    """Answer every httpx request to api.wavespeed.ai with an in-process mock app.

    Requests to other hosts pass through untouched.
    """
    with serve_in_process(settings) as app, app.routing() as router:
        yield router
