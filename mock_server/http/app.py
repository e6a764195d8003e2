"""The FastAPI app: routes made from the contract's model registry.

``create_app(settings)`` builds one app around one :class:`MockService`. Every
failure is answered in the API's envelope ``{code, message}``; nothing answers
a framework page or a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from ...contracts import Catalogue, ModelSpec, UnknownModelError
from ..assembly import MockServer, build_server
from ..core.components import SubmitRequest
from ..core.lifecycle import is_terminal
from ..core.service import UNREAD, MockService, Submission
from ..core.store import StoreError
from ..errors import ApiError, bad_request_message
from ..features.account import account_routes
from ..features.outputs import output_routes
from ..features.playground import playground_routes
from ..features.reference import reference_routes
from ..features.replay import CassetteMiddleware
from ..features.scenarios import scenario_routes
from ..features.uploads import upload_routes
from ..features.webhooks import webhook_routes
from ..settings import ANY_MODEL_HEADER, DEFAULT_SYNC_WAIT_S, SCENARIO_HEADER, Settings
from .access_log import AccessLogMiddleware
from .auth import Authenticator
from .bodies import parse_json, read_body
from .control import control_routes
from .files import serve_file
from .guards import RequestGuardMiddleware
from .journal import JournalMiddleware
from .poll_lane import PollLane
from .poll_lane import wanted as poll_lane_wanted
from .response_check import ResponseCheckMiddleware
from .responses import envelope, error_response
from .timeouts import BodyDeadlineMiddleware
from .versions import ApiVersionMiddleware, as_called
from .wire_faults import WireFaultMiddleware, decision_of, gateway_response, read_of

__all__ = ["create_app"]

log = logging.getLogger("wavespeed_mock.server")

SYNC_TIMEOUT_CODE = 5004
BASE64_WITH_WEBHOOK = (
    "webhook callback does not support base64 output, "
    "please use the normal API to use base64 output"
)
"""The ``error`` of the 400 for base64 output with a webhook [documented: base64-output]."""
# A sync wait on a virtual clock ends when the clock passes the deadline; this
# real-time bound keeps a forgotten frozen clock from hanging a client forever.
SYNC_REAL_TIME_CAP_S = 600.0

PREDICTION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""The shape of a prediction id in a path (the contract's ``predictionId``): the
server's own are 32 hex digits; replayed or hand-made ones may be any of these."""
OUTPUT_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")
"""A file name under ``/outputs/``: no separator, no NUL, no leading dot."""
_SHAPES = {
    PREDICTION_ID: "a prediction id is 1 to 128 letters, digits, '-' or '_'",
    OUTPUT_NAME: "an output name is letters, digits, '.', '-' and '_' "
    "(such as <prediction id>.mp4)",
}


# A test double sends no telemetry; newer FastAPI releases otherwise look up
# OpenTelemetry providers on every request.
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def _path_param(request: Request, name: str, shape: re.Pattern[str]) -> str:
    """A path parameter of the right shape; else a 404 that names the shape."""
    value: str = request.path_params[name]
    if not shape.fullmatch(value):
        raise ApiError(404, f"{value!r} not found: {_SHAPES[shape]}")
    return value


def create_app(
    settings: Settings | None = None, *, server: MockServer | None = None
) -> FastAPI:
    """The mock server as an ASGI app.

    Example:
        >>> app = create_app(Settings(data_dir=tmp_path, profile="instant"))
    """
    if server is None:
        server = build_server(settings or Settings())
    service = server.service
    settings = service.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            await service.aclose()

    auth = Authenticator(settings.api_keys)

    # Plain Starlette routes: the handlers take the raw request and answer the
    # envelope themselves, so FastAPI's dependency and serialisation layer would
    # only add cost on the two hottest paths.
    routes: list[BaseRoute] = []

    async def get_result(request: Request) -> Response:
        api_key = auth(request)
        prediction_id = _path_param(request, "prediction_id", PREDICTION_ID)
        read, row = read_of(request.scope, prediction_id)  # by the wire layer
        answer = await service.poll(prediction_id, api_key, row if read else UNREAD)
        return envelope(as_called(request.scope, answer))

    async def get_output(request: Request) -> Response:
        name = _path_param(request, "filename", OUTPUT_NAME)
        # A cached output is served from the cache, not copied per prediction.
        folder, found, media_type = await service.download(name)
        return serve_file(folder, found, media_type, request.headers.get("range"))

    routes += [
        Route("/outputs/{filename}", get_output, methods=["GET", "HEAD"]),
        *_feature_routes(server, auth),
        *control_routes(server),
    ]
    # An id never takes the name of a fixed route beside it, so that
    # GET /api/v3/predictions/delete is a 405 (it is POST only), not a 404.
    fixed = frozenset(
        path.rsplit("/", 1)[1]
        for path in (getattr(route, "path", "") for route in routes)
        if path.startswith("/api/v3/predictions/") and "{" not in path
    )
    app = FastAPI(
        title="wavespeed-mock",
        lifespan=lifespan,
        middleware=_middleware(server, auth, fixed),
        **_NO_TELEMETRY,
        openapi_url=None,  # the contract is served at /_mock/documents/openapi.yaml
        docs_url=None,
        redoc_url=None,
    )
    app.state.server = server
    # The hottest route first: the router tries routes in order, and a poll
    # matched last tried 40 patterns (a third of a poll's time in the app).
    polls: list[BaseRoute] = [
        _IdRoute("/api/v3/predictions/{prediction_id}/result", get_result, fixed),
        _IdRoute("/api/v3/predictions/{prediction_id}", get_result, fixed),
    ]
    # Then the submits: one route for every model of the catalogue (a model is
    # data) that never takes a path another route serves, so its place changes
    # no answer; tried after 40 patterns it cost a submit about 40 us.
    taken = frozenset(getattr(route, "path", "") for route in routes)
    submits: list[BaseRoute] = [
        _ModelRoute(_submit_handler(service, auth), taken, service.catalogue)
    ]
    app.router.routes.extend(polls + submits + routes)

    _install_error_handlers(app)
    return app


def _middleware(
    server: MockServer, auth: Authenticator, fixed: frozenset[str]
) -> list[Middleware]:
    """The app's middleware, outermost first (what a request meets in order)."""
    service, settings = server.service, server.settings
    stack: list[Middleware] = []
    if settings.access_log:  # outermost: its time covers the whole answer
        stack.append(Middleware(AccessLogMiddleware))
    recording = server.features.cassettes is not None
    if poll_lane_wanted(settings, recording=recording):
        # A plain result poll answered in one pass of the same components.
        stack.append(
            Middleware(
                PollLane,
                service=service,
                settings=settings,
                journal=server.journal,
                id_shape=PREDICTION_ID,
                fixed=fixed,
            )
        )
    stack += [
        # /api/v2/... continues as /api/v3/... (before the guard: one API behind it).
        Middleware(ApiVersionMiddleware),
        # Outside everything that answers, the proxy and replay included, so
        # that no request a rebinding page sends is served or journaled.
        Middleware(RequestGuardMiddleware, settings=settings),
        # Record/replay answers outside the response check: recorded answers are
        # the upstream's facts, checked into the cassette, not the mock's.
        *_feature_middleware(server, auth),
    ]
    if settings.check_responses:
        stack.append(
            Middleware(ResponseCheckMiddleware, sink=service.contract_violations)
        )
    stack += [
        Middleware(JournalMiddleware, journal=server.journal),
        Middleware(BodyDeadlineMiddleware, timeout_s=settings.body_timeout_s),
    ]
    if service.faults is not None:
        # inside the journal and the response check: both see what the wire got
        stack.append(
            Middleware(
                WireFaultMiddleware,
                faults=service.faults,
                is_submit=lambda path: service.catalogue.for_path(path) is not None,
                read=service.store.fetch,
            )
        )
    return stack


def _feature_routes(server: MockServer, auth: Authenticator) -> list[BaseRoute]:
    """Every feature's routes, for the app's assembly."""
    features, service = server.features, server.service
    return [
        *scenario_routes(features.scenarios),
        *output_routes(features.outputs),
        *webhook_routes(features.webhooks, auth),
        *upload_routes(features.uploads, service, auth),
        *account_routes(features.account, service, auth),
        *playground_routes(features.inbox, lambda: service.base_url),
        *reference_routes(service.catalogue),
    ]


def _feature_middleware(server: MockServer, auth: Authenticator) -> list[Middleware]:
    """Features that answer ahead of the routes (record/replay), for the app."""
    deck = server.features.cassettes
    if deck is None:
        return []
    settings = server.settings
    return [
        Middleware(
            CassetteMiddleware,
            deck=deck,
            auth=auth,
            base_url=lambda: server.service.base_url,
            # A recording forwards uploads too.
            max_body_bytes=max(settings.max_body_bytes, settings.max_upload_bytes),
            models=server.service.catalogue.for_path,
        )
    ]


class _IdRoute(Route):
    """A GET route with a ``{prediction_id}`` that is never one of ``fixed``."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[[Request], Awaitable[Response]],
        fixed: frozenset[str],
    ) -> None:
        super().__init__(path, endpoint, methods=["GET"])
        self.fixed = fixed

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if (
            match is not Match.NONE
            and child["path_params"]["prediction_id"] in self.fixed
        ):
            return Match.NONE, {}
        return match, child


def _allowed_methods(request: Request) -> str:
    """Every method some route serves on this path (the ``Allow`` of a 405)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


class _ModelRoute(Route):
    """``POST /api/v3/<model id>`` for every model the catalogue serves.

    Matches only paths no other route serves (so ``POST /api/v3/balance`` is
    the 405 of a GET route), and puts the model's spec in the scope; an id the
    catalogue lacks is a 404 naming the nearest ids.
    """

    def __init__(
        self,
        endpoint: Callable[[Request], Awaitable[Response]],
        taken: frozenset[str],
        catalogue: Catalogue,
    ) -> None:
        super().__init__("/api/v3/{model_id:path}", endpoint, methods=["POST"])
        self.taken = taken
        # The API's own resources (/api/v3/predictions/..., /api/v3/media/...)
        # are never model owners.
        self.reserved = (
            *tuple(
                "/api/v3/" + path[len("/api/v3/") :].split("/", 1)[0] + "/"
                for path in taken
                if path.startswith("/api/v3/")
            ),
            "/api/v3/predictions/",
        )
        self.catalogue = catalogue

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if path in self.taken or path.startswith(self.reserved):
            return Match.NONE, {}
        match, child = super().matches(scope)
        if match is Match.NONE or "/" not in child["path_params"]["model_id"]:
            return Match.NONE, {}
        return match, child


def _submit_handler(
    service: MockService, auth: Authenticator
) -> Callable[[Request], Awaitable[Response]]:
    settings = service.settings
    catalogue = service.catalogue

    async def submit(request: Request) -> Response:
        model_id = request.path_params["model_id"]
        model = catalogue.find(model_id)
        if model is None:
            raise ApiError(
                404,
                str(
                    UnknownModelError(
                        model_id, catalogue.ids(), catalogue.nearest(model_id)
                    )
                ),
            )
        api_key = auth(request)
        raw = await read_body(request, settings.max_body_bytes)
        body = parse_json(raw)
        problem = _request_problem(model, raw, settings.strict, body)
        if problem:
            raise ApiError(400, problem)
        # ?webhook= as the SDKs send it, else the body's webhook_url that one doc
        # page shows [documented: D-SUBMIT]; the query wins when both are given.
        # A ?webhook= present but empty is refused by the webhook check (400).
        webhook = (
            request.query_params.get("webhook")
            if request.scope["query_string"]
            else None  # most submits have no query: skip parsing one
        )
        if webhook is None:
            webhook = body.get("webhook_url") or None
        if webhook and body.get("enable_base64_output") is True:
            raise ApiError(
                400,
                "Invalid request body: $.enable_base64_output: "
                f"{BASE64_WITH_WEBHOOK}; drop the webhook and poll the result instead",
                error=BASE64_WITH_WEBHOOK,
            )
        submission = await service.submit(
            SubmitRequest(
                model=model,
                body=body,
                api_key=api_key,
                webhook=webhook,
                scenario=request.headers.get(SCENARIO_HEADER) or None,
                decided=decision_of(request.scope),
            )
        )
        if body.get("enable_sync_mode") is True:
            response = await _sync_answer(service, submission, request.scope)
        else:
            view = service.view(submission.prediction, accepted=True)
            response = envelope(as_called(request.scope, view))
        if model.any_model:
            response.headers[ANY_MODEL_HEADER] = model.output.kind
        return response

    return submit


async def _sync_answer(
    service: MockService, submission: Submission, scope: Scope
) -> Response:
    p = submission.prediction
    # Resolved from the engine where the server was built (assembly), never None
    # here; a service built by hand without it gets the server's default.
    wait_s = service.settings.sync_wait_s or DEFAULT_SYNC_WAIT_S
    fault = submission.fault
    if fault is not None and fault.sync_gateway_timeout:
        # The gateway gives up on the long request; the task goes on (D-SYNC).
        return gateway_response(504, fault.error_body)
    forced = submission.fault is not None and submission.fault.sync_timeout
    deadline = service.clock.now() + (0.0 if forced else wait_s)
    # A stop of the server ends the wait too: the client gets the 5004 body now
    # instead of holding the shutdown for up to sync_wait_s.
    waits = [
        asyncio.ensure_future(service.wait_until_terminal(p, deadline)),
        asyncio.ensure_future(service.until_shutdown()),
    ]
    try:
        await asyncio.wait(
            waits, timeout=SYNC_REAL_TIME_CAP_S, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for wait in waits:
            wait.cancel()
    data = await service.result(p)
    if not is_terminal(data["status"]):
        data["status"] = "processing"
        data["code"] = SYNC_TIMEOUT_CODE
        data["error"] = (
            f"Sync mode timed out after {wait_s:g} seconds. "
            "The prediction is still processing asynchronously."
        )
    return envelope(as_called(scope, data))


# Test suites send the same few bodies again and again; validation is a pure
# function of the body's bytes, so small bodies' verdicts are remembered.
_MEMO_MAX_BYTES = 16 * 1024


@functools.lru_cache(maxsize=1024)
def _memo_problem(model: ModelSpec, raw: bytes, strict: bool) -> str:
    return _problem_of(model, json.loads(raw), strict)


def _problem_of(model: ModelSpec, body: Any, strict: bool) -> str:
    problems = list(model.request_errors(body, strict=strict))
    return bad_request_message(problems) if problems else ""


def _request_problem(model: ModelSpec, raw: bytes, strict: bool, body: Any) -> str:
    """The 400 message for a submit body, or "" when it is valid."""
    if len(raw) <= _MEMO_MAX_BYTES:
        return _memo_problem(model, raw, strict)
    return _problem_of(model, body, strict)


def _install_error_handlers(app: FastAPI) -> None:

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(
            exc.status,
            exc.message,
            error_code=exc.error_code,
            headers=exc.headers,
            error=exc.error,
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        path = request.url.path
        if exc.status_code == 404:
            message = f"Not found: {request.method} {path}"
            if path.startswith("/api/v3/") and request.method == "POST":
                catalogue = request.app.state.server.service.catalogue
                model = path[len("/api/v3/") :]
                message = str(
                    UnknownModelError(model, catalogue.ids(), catalogue.nearest(model))
                )
            return error_response(404, message)
        if exc.status_code == 405:
            allow = _allowed_methods(request)
            return error_response(
                405,
                f"Method {request.method} is not allowed on {path}; use {allow}",
                headers={"Allow": allow},
            )
        return error_response(exc.status_code, str(exc.detail))

    async def on_disconnect(request: Request, exc: Exception) -> Response:
        # Nobody is left to read an answer; one line says what happened.
        log.warning(
            "client went away before sending the whole body of %s %s",
            request.method,
            request.url.path,
        )
        return error_response(
            400, "The client disconnected before the body was complete"
        )

    async def on_store_error(request: Request, exc: Exception) -> Response:
        # The database (PostgreSQL) is down or cut off: the client may retry; the
        # SDKs retry a 503 on a poll by themselves. Nothing was stored or charged.
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(
            503, f"Service unavailable: {exc}. Retry once the database is back."
        )

    async def on_crash(request: Request, exc: Exception) -> Response:
        if isinstance(exc, StoreError):  # raised in a middleware, outside the routes
            return await on_store_error(request, exc)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"Internal server error: {exc.__class__.__name__}")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(ClientDisconnect, on_disconnect)
    app.add_exception_handler(StoreError, on_store_error)
    app.add_exception_handler(Exception, on_crash)
