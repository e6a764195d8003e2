"""The FastAPI app: routes made from the contract's model registry.

``create_app(settings)`` builds one app around one :class:`MockService`. Every
failure is answered in the API's envelope ``{code, message}``; nothing answers
a framework page or a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...contracts import ModelSpec, did_you_mean, iter_request_errors, list_models
from ..assembly import MockServer, build_server, feature_middleware, feature_routes
from ..core.components import SubmitRequest
from ..core.lifecycle import is_terminal
from ..core.service import MockService, Submission
from ..errors import ApiError, bad_request_message
from ..settings import SCENARIO_HEADER, Settings
from .access_log import AccessLogMiddleware
from .auth import Authenticator
from .bodies import parse_json, read_body
from .control import control_routes
from .files import serve_file
from .journal import JournalMiddleware
from .response_check import ResponseCheckMiddleware
from .responses import envelope, error_response
from .wire_faults import WireFaultMiddleware, gateway_response

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

    app = FastAPI(
        title="wavespeed-mock",
        lifespan=lifespan,
        openapi_url=None,  # the contract is served at /_mock/documents/openapi.yaml
        docs_url=None,
        redoc_url=None,
    )
    app.state.server = server
    auth = Authenticator(settings.api_keys)

    # Plain Starlette routes: the handlers take the raw request and answer the
    # envelope themselves, so FastAPI's dependency and serialisation layer would
    # only add cost on the two hottest paths.
    routes: list[BaseRoute] = [
        Route(
            model.path,
            _submit_handler(service, model, auth),
            methods=["POST"],
            name=f"submit {model.id}",
        )
        for model in list_models()
    ]

    async def get_result(request: Request) -> Response:
        auth(request)
        return envelope(await service.poll(request.path_params["prediction_id"]))

    async def get_output(request: Request) -> Response:
        name = request.path_params["filename"]
        folder = service.outputs_dir
        if name.endswith(".mp4"):
            # A cached clip is served from the cache, not copied per prediction.
            folder, name = service.output_file(name[: -len(".mp4")])
        return serve_file(folder, name, "video/mp4", request.headers.get("range"))

    routes += [
        Route(
            "/api/v3/predictions/{prediction_id}/result", get_result, methods=["GET"]
        ),
        Route("/api/v3/predictions/{prediction_id}", get_result, methods=["GET"]),
        Route("/outputs/{filename}", get_output, methods=["GET", "HEAD"]),
        *feature_routes(server, auth),
        *control_routes(server),
    ]
    app.router.routes.extend(routes)

    _install_error_handlers(app)
    if service.faults is not None:
        # inside the journal and the response check: both see what the wire got
        app.add_middleware(
            WireFaultMiddleware,
            faults=service.faults,
            submit_paths=frozenset(model.path for model in list_models()),
        )
    app.add_middleware(JournalMiddleware, journal=server.journal)
    if settings.check_responses:
        app.add_middleware(ResponseCheckMiddleware, sink=service.contract_violations)
    # Record/replay answers outside the response check: recorded answers are the
    # upstream's facts, checked into the cassette (features/replay), not the mock's.
    for middleware in feature_middleware(server, auth):
        app.add_middleware(middleware.cls, *middleware.args, **middleware.kwargs)
    if settings.access_log:  # outermost: its time covers the whole answer
        app.add_middleware(AccessLogMiddleware)
    return app


def _submit_handler(
    service: MockService, model: ModelSpec, auth: Authenticator
) -> Callable[[Request], Awaitable[Response]]:
    settings = service.settings

    async def submit(request: Request) -> Response:
        api_key = auth(request)
        raw = await read_body(request, settings.max_body_bytes)
        body = parse_json(raw)
        problem = _request_problem(model.id, raw, settings.strict, body)
        if problem:
            raise ApiError(400, problem)
        # ?webhook= as the SDKs send it, else the body's webhook_url that one doc
        # page shows [documented: D-SUBMIT]; the query wins when both are given.
        webhook = request.query_params.get("webhook") or body.get("webhook_url") or None
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
            )
        )
        if body.get("enable_sync_mode") is True:
            return await _sync_answer(service, submission)
        return envelope(service.view(submission.prediction, accepted=True))

    submit.__name__ = f"submit_{model.id.replace('/', '_').replace('-', '_')}"
    return submit


async def _sync_answer(service: MockService, submission: Submission) -> Response:
    p = submission.prediction
    wait_s = service.settings.sync_wait_s
    fault = submission.fault
    if fault is not None and fault.sync_gateway_timeout:
        # The gateway gives up on the long request; the task goes on (D-SYNC).
        return gateway_response(504, fault.error_body)
    forced = submission.fault is not None and submission.fault.sync_timeout
    deadline = service.clock.now() + (0.0 if forced else wait_s)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(
            service.wait_until_terminal(p, deadline), SYNC_REAL_TIME_CAP_S
        )
    data = await service.result(p)
    if not is_terminal(data["status"]):
        data["status"] = "processing"
        data["code"] = SYNC_TIMEOUT_CODE
        data["error"] = (
            f"Sync mode timed out after {wait_s:g} seconds. "
            "The prediction is still processing asynchronously."
        )
    return envelope(data)


# Test suites send the same few bodies again and again; validation is a pure
# function of the body's bytes, so small bodies' verdicts are remembered.
_MEMO_MAX_BYTES = 16 * 1024


@functools.lru_cache(maxsize=1024)
def _memo_problem(model: str, raw: bytes, strict: bool) -> str:
    return _problem_of(model, json.loads(raw), strict)


def _problem_of(model: str, body: Any, strict: bool) -> str:
    problems = list(iter_request_errors(model, body, strict=strict))
    return bad_request_message(problems) if problems else ""


def _request_problem(model: str, raw: bytes, strict: bool, body: Any) -> str:
    """The 400 message for a submit body, or "" when it is valid."""
    if len(raw) <= _MEMO_MAX_BYTES:
        return _memo_problem(model, raw, strict)
    return _problem_of(model, body, strict)


def _install_error_handlers(app: FastAPI) -> None:
    models = [m.id for m in list_models()]

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
                model = path[len("/api/v3/") :]
                close = did_you_mean(model, models)
                hint = f" Did you mean {close!r}?" if close else ""
                message = f"Model {model!r} not found.{hint} Models served: {', '.join(models)}."
            return error_response(404, message)
        if exc.status_code == 405:
            return error_response(
                405,
                f"Method {request.method} is not allowed on {path}",
                headers=dict(exc.headers or {}),
            )
        return error_response(exc.status_code, str(exc.detail))

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"Internal server error: {exc.__class__.__name__}")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_crash)
