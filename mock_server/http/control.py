"""The control API under ``/_mock``: what tests use to steer the server.

Reset, timing profile, clock, and a look at the stored predictions with the
seeds the server chose. Described in ``contracts/mock-control.yaml``. It needs no
API key: the server binds to loopback by default.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
from typing import TYPE_CHECKING, Any, Protocol, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...contracts.errors import WavespeedMockError
from ..core.clock import LATEST_TIME
from ..core.engine import device_names
from ..core.prediction import format_timestamp, parse_timestamp
from ..errors import ApiError, bad_request
from ..settings import CONTROL_PREFIX
from .bodies import read_json_object
from .documents import yaml_document
from .responses import envelope

if TYPE_CHECKING:
    from ..assembly import MockServer
    from ..core.prediction import Prediction
    from ..core.service import MockService

__all__ = ["PRUNE_FIELDS", "ControlHandlers", "control_routes"]

PRUNE_FIELDS: dict[str, type] = {
    "max_predictions": int,
    "max_age_s": float,
    "max_upload_age_s": float,
    "max_cache_bytes": int,
}
"""The retention settings ``POST /_mock/prune`` may override for one prune (the
contract's ``control-prune.request.json`` bounds them)."""


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
        **_clip_duration(service),
    }


def _seconds(body: dict[str, Any], key: str) -> float:
    value = body[key]
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
    ):
        raise bad_request(f"$.{key}", "expected a number of seconds")
    if abs(value) > LATEST_TIME:
        raise bad_request(
            f"$.{key}",
            f"{value!r} is out of the clock's range (at most {LATEST_TIME:.0f} "
            "seconds, 3000-01-01T00:00:00Z as Unix time; the clock stops there)",
        )
    return float(value)


def _clip_duration(service: MockService) -> dict[str, Any]:
    # An engine that renders clips of another length than the API's (Ovi's
    # 960x960_10s variant) declares it; the contract check reads it from here.
    seconds = getattr(service.engine, "clip_duration_s", None)
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
        return {"clip_duration_s": float(seconds)}
    return {}


def journal_page(entries: list[dict[str, Any]], query: Any) -> list[dict[str, Any]]:
    """``?since=`` (ISO 8601) and ``?limit=`` (the newest N) applied; newest last.

    Each entry's ``at`` stays Unix seconds (the playground reads it as such);
    ``wavespeed-mock control journal`` prints it as an RFC 3339 time.
    """
    since_text = query.get("since")
    if since_text is not None:
        try:
            cutoff = parse_timestamp(since_text)
        except ValueError:
            raise bad_request(
                "since",
                f"{since_text!r} is not an ISO 8601 time such as 2026-01-02T03:04:05Z",
                what="query parameter",
            ) from None
        entries = [e for e in entries if e["at"] >= cutoff]
    limit_text = query.get("limit")
    if limit_text is not None:
        if not limit_text.isdigit() or int(limit_text) < 1:
            raise bad_request(
                "limit",
                f"{limit_text!r} is not a whole number above 0",
                what="query parameter",
            )
        entries = entries[-int(limit_text) :]
    return entries


class _ListsWorkers(Protocol):
    """A shared store that lists its processes (``PostgresStore.workers``)."""

    def workers(self) -> dict[str, Any]: ...


class ControlHandlers:
    """The control API's own handlers (features add theirs: scenarios, ledger,
    webhooks), bound to the server; a test can call one without a server
    running. The control API needs no key: it serves loopback only."""

    def __init__(self, server: MockServer) -> None:
        self.server = server
        self.service = server.service

    async def health(self, request: Request) -> Response:
        return envelope({"ok": True})

    async def state(self, request: Request) -> Response:
        if self.service.shared_time is not None:
            self.service.shared_time.refresh()  # as another process left it
        return envelope(state_of(self.service))

    async def reset(self, request: Request) -> Response:
        return envelope({"deleted": self.server.reset()})

    async def prune(self, request: Request) -> Response:
        body = await read_json_object(
            request, "control-prune.request.json", optional=True
        )
        changes = {
            name: kind(body[name])
            for name, kind in PRUNE_FIELDS.items()
            if name in body
        }
        report = await self.service.aprune(self.service.retention.replace(**changes))
        return envelope(report.as_json())

    async def profile(self, request: Request) -> Response:
        body = await read_json_object(request)
        name = body.get("profile")
        if not isinstance(name, str):
            raise bad_request("$.profile", "expected a profile name such as 'instant'")
        try:
            self.service.set_profile(name)
        except WavespeedMockError as exc:
            raise bad_request("$.profile", str(exc)) from None
        return envelope(state_of(self.service))

    async def clock(self, request: Request) -> Response:
        body = await read_json_object(request)
        virtual = body.get("virtual")
        if virtual is not None and not isinstance(virtual, bool):
            raise bad_request("$.virtual", "expected true or false")
        moves = {key: _seconds(body, key) for key in ("advance", "set") if key in body}
        if moves and not (virtual is True or self.service.clock.virtual):
            raise ApiError(
                409,
                'The clock is real; switch to a virtual clock with {"virtual": true} first',
            )
        if moves.get("advance", 0.0) < 0:
            raise bad_request("$.advance", "a clock never goes backwards")
        if virtual is True:
            self.service.clock.freeze()
        if "advance" in moves:
            self.service.clock.advance(moves["advance"])
        if "set" in moves:
            self.service.clock.set(moves["set"])
        if virtual is False:
            self.service.clock.unfreeze()
        self.service.time_changed()
        return envelope(state_of(self.service))

    async def predictions(self, request: Request) -> Response:
        store = self.service.store
        placements = await asyncio.to_thread(store.placements) if store.shared else {}
        items = [
            {
                "id": p.id,
                "model": p.model,
                "status": self.service.status(p),
                "seed": p.seed,
                "seed_requested": p.seed_requested,
                "created_at": format_timestamp(p.created_at),
                "profile": p.profile,
                "polls": p.polls,
                "input": p.input,
                **_render_of(p, placements.get(p.id), shared=store.shared),
            }
            for p in self.service.predictions()
        ]
        return envelope({"items": items})

    async def journal(self, request: Request) -> Response:
        return envelope(
            {"items": journal_page(self.server.journal.entries(), request.query_params)}
        )

    async def workers(self, request: Request) -> Response:
        """The processes on this state (with ``--database``: every ``serve``,
        ``serve --no-render`` and ``worker`` process on the database; else this
        one), the tasks each holds, and the tasks free to take."""
        store = self.service.store
        if store.shared:
            lister = cast("_ListsWorkers", store)
            return envelope(await asyncio.to_thread(lister.workers))
        pending = self.service.renders.pending_ids()
        this = {
            "id": "this process",
            "role": "serve",
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "engine": self.service.engine.name,
            "devices": list(device_names(self.service.engine)),
            "started_at": None,
            "heartbeat": None,
            "alive": True,
            "state": "busy" if pending else "idle",
            "holds": len(pending),
            "tasks": pending[:20],
        }
        return envelope(
            {"processes": [this], "queue": {"free": 0, "held": len(pending)}}
        )

    async def document(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("openapi.yaml", "mock-control.yaml"):
            raise ApiError(
                404, f"No document {name!r}; try openapi.yaml or mock-control.yaml"
            )
        return yaml_document(name, request.headers.get("accept", ""))

    def routes(self) -> list[BaseRoute]:
        p = CONTROL_PREFIX
        return [
            Route(f"{p}/health", self.health, methods=["GET"]),
            Route(f"{p}/state", self.state, methods=["GET"]),
            Route(f"{p}/reset", self.reset, methods=["POST"]),
            Route(f"{p}/prune", self.prune, methods=["POST"]),
            Route(f"{p}/profile", self.profile, methods=["POST"]),
            Route(f"{p}/clock", self.clock, methods=["POST"]),
            Route(f"{p}/predictions", self.predictions, methods=["GET"]),
            Route(f"{p}/journal", self.journal, methods=["GET"]),
            Route(f"{p}/workers", self.workers, methods=["GET"]),
            Route(f"{p}/documents/{{name}}", self.document, methods=["GET"]),
        ]


def control_routes(server: MockServer) -> list[BaseRoute]:
    """The control API's own routes (features add theirs: scenarios, ledger, webhooks)."""
    return ControlHandlers(server).routes()


def _render_of(
    p: Prediction, placed: tuple[str | None, int] | None, *, shared: bool
) -> dict[str, Any]:
    """Where and when a task's render ran: the process (an id of
    ``GET /_mock/workers``), the renders begun, and the clock's times."""
    started, ended = p.render_started_at, p.rendered_at
    if shared:
        worker, attempts = placed if placed is not None else (None, 0)
    else:  # one process renders everything
        began = started is not None
        worker, attempts = ("this process" if began else None), int(began)
    return {
        "render": {
            "worker": worker,
            "device": p.device,
            "attempts": attempts,
            "started_at": None if started is None else format_timestamp(started),
            "rendered_at": None if ended is None else format_timestamp(ended),
            "queued_ms": None
            if started is None
            else max(0, round((started - p.created_at) * 1000)),
            "render_ms": None
            if started is None or ended is None
            else max(0, round((ended - started) * 1000)),
        }
    }
