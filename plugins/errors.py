"""Errors of the test helpers: contract violations, untranslatable schemas, budgets.

Every class derives from :class:`~wavespeed_mock.contracts.WavespeedMockError` and
from the standard class that fits, so pytest reports a :class:`ContractViolation`
as a test failure (it is an ``AssertionError``), not as an error.
"""

from __future__ import annotations

from typing import Any

from ..contracts.errors import WavespeedMockError

__all__ = [
    "ContractViolation",
    "ScenarioError",
    "SpendLimitError",
    "UnknownSchemaError",
    "UnsupportedSchemaError",
]


class ContractViolation(AssertionError, WavespeedMockError):
    """A response or body, seen in a test, that breaks the contract.

    Carries the JSON path of the first offending value (``$.data.status``), the
    violated rule (``prediction-envelope.json#/properties/data/...``), the
    offending value and the full multi-line explanation.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "$",
        rule: str = "",
        instance: Any = None,
    ) -> None:
        self.path = path
        self.rule = rule
        self.instance = instance
        super().__init__(message)


class UnsupportedSchemaError(WavespeedMockError, ValueError):
    """A JSON Schema keyword that the strategy translator does not understand.

    Raised eagerly, for the whole document, so that a contract change that adds a
    keyword fails the translator's test instead of silently generating wrong data.
    """

    def __init__(self, keyword: str, pointer: str, schema_name: str = "") -> None:
        self.keyword = keyword
        self.pointer = pointer
        self.schema_name = schema_name
        where = f"{schema_name}#{pointer}" if schema_name else f"#{pointer}"
        super().__init__(
            f"The strategy translator does not handle the JSON Schema keyword "
            f"{keyword!r} (at {where}). Teach it the keyword in "
            f"wavespeed_mock/plugins/strategies/_keywords.py, or use a keyword it supports."
        )


class UnknownSchemaError(WavespeedMockError, LookupError):
    """A schema name that no contract schema file has."""

    def __init__(self, name: str, known: list[str], suggestion: str | None) -> None:
        self.name = name
        self.known = known
        self.suggestion = suggestion
        hint = f" Did you mean {suggestion!r}?" if suggestion else ""
        super().__init__(
            f"No contract schema is named {name!r}.{hint} Known: {', '.join(known)}."
        )


class SpendLimitError(WavespeedMockError, ValueError):
    """The contract check's plan could cost more than ``max_spend`` allows."""

    def __init__(self, planned_usd: float, max_spend_usd: float, detail: str) -> None:
        self.planned_usd = planned_usd
        self.max_spend_usd = max_spend_usd
        super().__init__(
            f"The contract check may spend up to ${planned_usd:.2f} ({detail}), "
            f"more than --max-spend ${max_spend_usd:.2f} allows. Raise --max-spend "
            f"to at least {planned_usd:.2f} or select fewer models with --models."
        )


class ScenarioError(WavespeedMockError, ValueError):
    """A scenario the mock refuses (an unknown field, a value out of range)."""
