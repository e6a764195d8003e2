"""Record/replay over HTTP: an ASGI middleware ahead of the mock's own routes.

It takes what a cassette answers (replayed submits and their polls, recorded
outputs under ``/outputs/recorded/``) and, when recording, every other
``/api/v3/`` request, which it forwards upstream. Everything else, and a replay
miss under ``replay_miss="synthetic"``, reaches the mock's routes unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ....contracts import ModelSpec, builtin_catalogue
from ...errors import ApiError
from ...http.auth import Authenticator
from ...http.bodies import parse_json, read_body
from ...http.files import serve_file
from ...http.responses import error_response, json_response
from .answers import RECORDED_OUTPUTS_PATH
from .deck import CassetteDeck
from .proxy import POLL_PATH, ProxiedRequest

__all__ = ["CassetteMiddleware"]

_MEDIA_TYPES = {"mp4": "video/mp4", "webm": "video/webm", "png": "image/png"}


class CassetteMiddleware:
    """Answers from (or records into) ``deck``'s cassette; passes the rest on."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        deck: CassetteDeck,
        auth: Authenticator,
        base_url: Callable[[], str],
        max_body_bytes: int,
        models: Callable[[str], ModelSpec | None] | None = None,
    ) -> None:
        self.app = app
        self.deck = deck
        self.auth = auth
        self.base_url = base_url
        self.max_body_bytes = max_body_bytes
        self.models = models or builtin_catalogue().for_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._closing_on_shutdown(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith(RECORDED_OUTPUTS_PATH + "/") and method in ("GET", "HEAD"):
            await self._output(path, scope)(scope, receive, send)
            return
        if not path.startswith("/api/v3/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        body = b""
        response: Response | None
        try:
            body = await read_body(request, self.max_body_bytes)
            response = await self._answer(request, body)
        except ApiError as exc:
            response = error_response(
                exc.status, exc.message, error_code=exc.error_code, headers=exc.headers
            )
        if response is None:
            await self.app(scope, _replaying(body, receive), send)
            return
        await response(scope, receive, send)

    async def _answer(self, request: Request, body: bytes) -> Response | None:
        deck, path, method = self.deck, request.url.path, request.method
        base_url = self.base_url()
        model = self.models(path) if method == "POST" else None
        poll = POLL_PATH.match(path) if method == "GET" else None
        player = deck.player
        if player is not None and model is not None:
            self.auth(request)
            submitted = parse_json(body)
            played = player.submit(model.id, submitted, base_url=base_url)
            if played is not None:
                return json_response(played.body, played.status)
            if deck.proxy is None:
                if deck.miss == "error":
                    raise player.miss(model.id, submitted, path=path)
                return None
        if player is not None and poll is not None and player.is_playing(poll.group(1)):
            self.auth(request)
            played = player.poll(poll.group(1), base_url=base_url)
            return json_response(played.body, played.status)
        if deck.proxy is None:
            return None
        answer = await deck.proxy.handle(
            ProxiedRequest(
                method=method,
                path=path,
                query=request.url.query,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            ),
            base_url=base_url,
        )
        return Response(answer.content, answer.status, headers=answer.headers)

    def _output(self, path: str, scope: Scope) -> Response:
        name = path[len(RECORDED_OUTPUTS_PATH) + 1 :]
        if self.deck.cassette.output_path(name) is None:
            return error_response(404, f"Recorded output {name!r} not found")
        media_type = _MEDIA_TYPES.get(
            name.rsplit(".", 1)[-1], "application/octet-stream"
        )
        headers = dict(Request(scope).headers)
        try:
            return serve_file(
                self.deck.cassette.outputs_dir, name, media_type, headers.get("range")
            )
        except ApiError as exc:
            return error_response(exc.status, exc.message)

    def _closing_on_shutdown(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.deck.aclose()
            return message

        return wrapped


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body on, then the real one's news."""
    sent = False

    async def wrapped() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return wrapped
