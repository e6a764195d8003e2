"""Setting scenarios from a test: ``wavespeed_server.scenario(...)`` and the marker."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..mock_server.assembly import MockServer
from ..mock_server.errors import ApiError
from .errors import ScenarioError

__all__ = ["set_scenario", "set_scenarios"]


def set_scenario(
    server: MockServer, scope: str = "global", **fields: Any
) -> dict[str, Any]:
    """Set one scenario on ``server``; its state as the control API shows it.

    Raises:
        ScenarioError: the server refuses the scenario (the message says why).
    """
    try:
        scenario = server.features.scenarios.add({"scope": scope, **fields})
    except ApiError as exc:
        raise ScenarioError(exc.message) from None
    return scenario.as_json()


def set_scenarios(
    setter: Callable[..., dict[str, Any]], scenarios: Iterable[Mapping[str, Any]]
) -> None:
    """Set each scenario of a marker's ``scenarios=[...]`` (JSON objects) with
    ``setter`` (a fixture object's ``scenario`` method)."""
    if isinstance(scenarios, Mapping):
        raise ScenarioError(
            "scenarios= takes a list of scenario objects, e.g. "
            "scenarios=[{'fail_code': 1200}]; got one mapping"
        )
    for body in scenarios:
        if not isinstance(body, Mapping):
            raise ScenarioError(
                f"each scenario is a mapping of its fields, got {body!r}"
            )
        setter(**dict(body))
