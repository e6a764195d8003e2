"""The playground's routes: the page, its two assets, and the webhook inbox.

``GET /`` and ``GET /playground`` answer the page; ``/playground/<asset>`` its
script and style sheet, each with the page's security headers (no inline
script, no framing). ``POST /playground/inbox`` receives webhook deliveries
(answered 204); ``GET /_mock/playground/inbox`` lists them for the page, as
part of the control API (its Host, Origin and token rules apply).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...errors import ApiError
from ...http.bodies import read_body
from ...http.responses import envelope
from ...settings import CONTROL_PREFIX
from .inbox import INBOX_BODY_BYTES, WebhookInbox
from .page import ASSET_TYPES, PAGE_PATHS, PLAYGROUND_PREFIX, asset_bytes, page_headers

__all__ = ["playground_routes"]


def playground_routes(
    inbox: WebhookInbox, base_url: Callable[[], str]
) -> list[BaseRoute]:
    """The page's routes; ``base_url()`` is where the server's clips are served
    (read per request: a live server learns its port after it is built)."""

    def asset(name: str) -> Response:
        return Response(
            asset_bytes(name),
            media_type=ASSET_TYPES[name],
            headers=page_headers(base_url()),
        )

    async def page(request: Request) -> Response:
        return asset("index.html")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSET_TYPES or name == "index.html":
            raise ApiError(
                404,
                f"Not found: {PLAYGROUND_PREFIX}/{name[:100]}; the playground is at /",
            )
        return asset(name)

    async def receive(request: Request) -> Response:
        # Deliveries come from a server, never from a web page: a browser sends
        # an Origin with every cross-site POST, and cannot send JSON to another
        # site without a preflight, which this server never answers.
        origin = request.headers.get("origin")
        if origin is not None or request.headers.get("sec-fetch-site"):
            raise ApiError(
                403,
                f"Forbidden: the inbox takes webhook deliveries, not requests from "
                f"web pages (Origin {str(origin)[:100]!r})",
            )
        media_type = request.headers.get("content-type", "").partition(";")[0].strip()
        if media_type.lower() != "application/json":
            raise ApiError(
                415,
                f"Unsupported media type: {media_type or 'none'!r}; a webhook "
                "delivery is JSON with 'Content-Type: application/json'",
            )
        body = await read_body(request, INBOX_BODY_BYTES)
        inbox.receive(request.headers, body)
        return Response(status_code=204)

    async def deliveries(request: Request) -> Response:
        return envelope({"items": inbox.entries()})

    return [
        *(Route(path, page, methods=["GET", "HEAD"]) for path in PAGE_PATHS),
        Route(f"{PLAYGROUND_PREFIX}/inbox", receive, methods=["POST"]),
        Route(f"{PLAYGROUND_PREFIX}/{{name}}", static, methods=["GET", "HEAD"]),
        Route(f"{CONTROL_PREFIX}/playground/inbox", deliveries, methods=["GET"]),
    ]
