"""The custom outputs' control routes: ``/_mock/outputs`` (set, list, clear)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...http.bodies import read_json_object
from ...http.responses import envelope
from ...settings import CONTROL_PREFIX
from .book import OutputBook

__all__ = ["output_routes"]


def output_routes(book: OutputBook) -> list[BaseRoute]:
    async def set_outputs(request: Request) -> Response:
        body = await read_json_object(request, "control-outputs.request.json")
        rule = book.add(body)
        return envelope({"rule": rule.as_json(), "rules": book.state()})

    async def list_outputs(request: Request) -> Response:
        return envelope({"rules": book.state()})

    async def clear_outputs(request: Request) -> Response:
        book.reset()
        return envelope({"rules": book.state()})

    path = f"{CONTROL_PREFIX}/outputs"
    return [
        Route(path, set_outputs, methods=["POST"]),
        Route(path, list_outputs, methods=["GET"]),
        Route(path, clear_outputs, methods=["DELETE"]),
    ]
