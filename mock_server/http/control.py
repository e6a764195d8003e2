"""The control API under ``/_mock``: what tests use to steer the server.

Reset, timing profile, clock, and a look at the stored predictions with the
seeds the server chose. Described in ``contracts/mock-control.yaml``. It needs no
API key: the server binds to loopback by default.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...contracts.errors import WavespeedMockError
from ..core.clock import VirtualClock
from ..core.prediction import format_timestamp
from ..errors import ApiError
from .bodies import read_json_body
from .responses import envelope

if TYPE_CHECKING:
    from ..core.service import MockService

__all__ = ["CONTROL_PREFIX", "control_routes"]

CONTROL_PREFIX = "/_mock"


async def _json_object(request: Request) -> dict[str, Any]:
    body = await read_json_body(request, 64 * 1024)
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid request body: $: expected a JSON object")
    return body


def state_of(service: MockService) -> dict[str, Any]:
    clock = service.clock
    return {
        "profile": service.profile.name,
        "clock": {
            "virtual": clock.virtual,
            "now": clock.now(),
            "now_iso": format_timestamp(clock.now()),
        },
        "predictions": len(service.store),
        "pending_renders": service.pending_renders(),
        "engine": service.engine.name,
        "strict": service.settings.strict,
    }


def control_routes(service: MockService) -> list[BaseRoute]:
    async def health(request: Request) -> Response:
        return envelope({"ok": True})

    async def state(request: Request) -> Response:
        return envelope(state_of(service))

    async def reset(request: Request) -> Response:
        return envelope({"deleted": service.reset()})

    async def profile(request: Request) -> Response:
        body = await _json_object(request)
        name = body.get("profile")
        if not isinstance(name, str):
            raise ApiError(
                400,
                "Invalid request body: $.profile: expected a profile name such as 'instant'",
            )
        try:
            service.set_profile(name)
        except WavespeedMockError as exc:
            raise ApiError(400, f"Invalid request body: $.profile: {exc}") from None
        return envelope(state_of(service))

    async def clock(request: Request) -> Response:
        body = await _json_object(request)
        virtual = body.get("virtual")
        if virtual is not None and not isinstance(virtual, bool):
            raise ApiError(
                400, "Invalid request body: $.virtual: expected true or false"
            )
        if virtual is True:
            service.use_virtual_clock()
        for key in ("advance", "set"):
            if key in body:
                value = body[key]
                if (
                    not isinstance(value, (int, float))
                    or isinstance(value, bool)
                    or not math.isfinite(value)
                ):
                    raise ApiError(
                        400,
                        f"Invalid request body: $.{key}: expected a number of seconds",
                    )
                target = service.clock
                if not isinstance(target, VirtualClock):
                    raise ApiError(
                        409,
                        'The clock is real; switch to a virtual clock with {"virtual": true} first',
                    )
                if key == "advance":
                    if value < 0:
                        raise ApiError(
                            400,
                            "Invalid request body: $.advance: a clock never goes backwards",
                        )
                    target.advance(float(value))
                else:
                    target.set(float(value))
        if virtual is False:
            service.use_real_clock()
        return envelope(state_of(service))

    async def predictions(request: Request) -> Response:
        items = [
            {
                "id": p.id,
                "model": p.model,
                "status": service.status(p),
                "seed": p.seed,
                "seed_requested": p.seed_requested,
                "created_at": format_timestamp(p.created_at),
                "profile": p.profile,
                "polls": p.polls,
                "input": p.input,
            }
            for p in service.store.all()
        ]
        return envelope({"items": items})

    async def journal(request: Request) -> Response:
        return envelope({"items": list(service.journal)})

    async def webhook_log(request: Request) -> Response:
        log = service.webhook_log
        return envelope({"items": log.attempts() if log is not None else []})

    async def ledger(request: Request) -> Response:
        account = service.account
        keys = sorted({p.api_key for p in service.store.all()})
        items = (
            []
            if account is None
            else [
                {
                    "api_key": key,
                    "spent": account.spent(key),
                    "balance": account.balance(key),
                }
                for key in keys
            ]
        )
        return envelope({"items": items})

    async def document(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("openapi.yaml", "mock-control.yaml"):
            raise ApiError(
                404, f"No document {name!r}; try openapi.yaml or mock-control.yaml"
            )
        text = (
            resources.files("wavespeed_mock.contracts")
            .joinpath(name)
            .read_text(encoding="utf-8")
        )
        return Response(text, media_type="application/yaml")

    p = CONTROL_PREFIX
    return [
        Route(f"{p}/health", health, methods=["GET"]),
        Route(f"{p}/state", state, methods=["GET"]),
        Route(f"{p}/reset", reset, methods=["POST"]),
        Route(f"{p}/profile", profile, methods=["POST"]),
        Route(f"{p}/clock", clock, methods=["POST"]),
        Route(f"{p}/predictions", predictions, methods=["GET"]),
        Route(f"{p}/journal", journal, methods=["GET"]),
        Route(f"{p}/webhooks", webhook_log, methods=["GET"]),
        Route(f"{p}/ledger", ledger, methods=["GET"]),
        Route(f"{p}/documents/{{name}}", document, methods=["GET"]),
    ]
