"""Scenarios: failures and limits a client must survive, set through the control API."""

from __future__ import annotations

from .book import SCENARIO_HEADER, ScenarioBook
from .routes import scenario_routes
from .scenario import TASK_ERRORS, Scenario
from .shared import ScenarioStore, SharedScenarioBook

__all__ = [
    "SCENARIO_HEADER",
    "TASK_ERRORS",
    "Scenario",
    "ScenarioBook",
    "ScenarioStore",
    "SharedScenarioBook",
    "scenario_routes",
]
