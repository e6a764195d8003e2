"""The scenarios' control routes: ``/_mock/scenarios`` (set, list, clear)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...http.bodies import read_json_object
from ...http.responses import envelope
from ...settings import CONTROL_PREFIX
from .book import ScenarioBook

__all__ = ["scenario_routes"]


def scenario_routes(book: ScenarioBook) -> list[BaseRoute]:
    async def set_scenario(request: Request) -> Response:
        scenario = book.add(await read_json_object(request))
        return envelope({"scenario": scenario.as_json(), "scenarios": book.state()})

    async def list_scenarios(request: Request) -> Response:
        return envelope({"scenarios": book.state()})

    async def clear_scenarios(request: Request) -> Response:
        book.reset()
        return envelope({"scenarios": book.state()})

    path = f"{CONTROL_PREFIX}/scenarios"
    return [
        Route(path, set_scenario, methods=["POST"]),
        Route(path, list_scenarios, methods=["GET"]),
        Route(path, clear_scenarios, methods=["DELETE"]),
    ]
