"""Scenarios: failures and limits a client must survive, set through the control API."""

from __future__ import annotations

from .book import SCENARIO_HEADER, TASK_ERRORS, Scenario, ScenarioBook
from .routes import scenario_routes

__all__ = [
    "SCENARIO_HEADER",
    "TASK_ERRORS",
    "Scenario",
    "ScenarioBook",
    "scenario_routes",
]
