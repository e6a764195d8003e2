"""The webhooks' routes: the key's secret, and the delivery log of the control API."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...core.keys import key_id
from ...http.auth import Authenticator
from ...http.responses import envelope
from ...settings import CONTROL_PREFIX
from .delivery import WebhookDelivery

__all__ = ["webhook_routes"]


def webhook_routes(delivery: WebhookDelivery, auth: Authenticator) -> list[BaseRoute]:
    async def get_secret(request: Request, api_key: str) -> Response:
        key = key_id(api_key)
        return envelope({"secret": delivery.secrets.secret_for(key)})

    async def attempts(request: Request) -> Response:
        return envelope({"items": delivery.log.attempts()})

    return [
        *auth.routes([("/api/v3/webhook/secret", get_secret, "GET")]),
        Route(f"{CONTROL_PREFIX}/webhooks", attempts, methods=["GET"]),
    ]
