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
    "RequestsRouter",
    "route_httpx",
    "route_requests",
    "serve_in_process",
]

API_BASE_URL = "https://api.wavespeed.ai"


class _InProcessHandle(Received):
    """What the in-process fixtures' handles share: the server and its helpers."""

    mock: MockServer

    def reset(self) -> None:
        """Forget every prediction (see :meth:`MockServer.reset`)."""
        self.mock.reset()

    def wait_for_renders(self, timeout: float = 120.0) -> None:
        """Return once every render queued so far has finished or failed."""
        wait_for_renders(self.mock.service, timeout)

    def scenario(self, scope: str = "global", **fields: Any) -> dict[str, Any]:
        """Set a scenario (as ``wavespeed_server.scenario``); connection faults
        need a live server and are skipped here."""
        from ._scenarios import set_scenario

        return set_scenario(self.mock, scope, **fields)

    def returns(
        self,
        model: str,
        *outputs: Any,
        match: dict[str, Any] | None = None,
        times: int | None = None,
    ) -> dict[str, Any]:
        """Say what ``model`` returns (as ``wavespeed_server.returns``)."""
        from ._outputs import output_rule

        rule = self.mock.features.outputs.add(
            output_rule(model, outputs, match=match, times=times)
        )
        said: dict[str, Any] = rule.as_json()
        return said


class InProcessRouter(_InProcessHandle):
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


class RequestsRouter(_InProcessHandle):
    """The handle the ``wavespeed_requests`` fixture yields."""

    def __init__(self, mock: Any, server: MockServer) -> None:
        self.requests_mock = mock
        """The ``responses.RequestsMock`` in force (its ``calls`` list)."""
        self.mock = server
        self.service = server.service

    @property
    def calls(self) -> Any:
        """Every request routed to the mock, with its response."""
        return self.requests_mock.calls


@contextlib.contextmanager
def route_requests(settings: Settings) -> Iterator[RequestsRouter]:
    """Answer every ``requests`` call to api.wavespeed.ai with an in-process mock
    app; calls to other hosts pass through untouched.

    Built on ``responses`` (the well-kept mock of ``requests``), each request
    handed to the app as ``wavespeed_httpx`` hands its own.

    Raises:
        ImportError: ``responses`` is not installed (the ``requests`` extra).
    """
    try:
        import responses
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "The wavespeed_requests fixture needs the `responses` package: "
            "pip install 'wavespeed-mock[requests]'"
        ) from exc
    import re

    with serve_in_process(settings) as app:
        handle = _handler(app._app, app._portal)

        def callback(prepared: Any) -> tuple[int, dict[str, str], bytes]:
            body = prepared.body or b""
            if isinstance(body, str):
                body = body.encode("utf-8")
            elif not isinstance(body, bytes):  # a file or a generator (uploads)
                body = b"".join(
                    c if isinstance(c, bytes) else str(c).encode() for c in body
                )
            answer = handle(
                httpx.Request(
                    prepared.method,
                    prepared.url,
                    headers=dict(prepared.headers),
                    content=body,
                )
            )
            return answer.status_code, dict(answer.headers), answer.content

        ours = re.compile(r"https://api\.wavespeed\.ai(:443)?(/.*)?$")
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):
                mock.add_callback(method, ours, callback=callback)
            mock.add_passthru(re.compile(r"^(?!https://api\.wavespeed\.ai[:/]).*"))
            yield RequestsRouter(mock, app.mock)


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
