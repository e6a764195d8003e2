"""The pytest plugin, Hypothesis strategies and the contract check.

Importing this package stays light (the pytest11 entry point imports the plugin
at every pytest start): Hypothesis and httpx load on first use of a name that
needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ContractViolation,
    ScenarioError,
    SpendLimitError,
    UnknownSchemaError,
    UnsupportedSchemaError,
)

if TYPE_CHECKING:
    from .assertions import assert_conforms
    from .cassette_check import CassetteReport, check_cassette
    from .check import (
        CheckReport,
        Finding,
        SpendPlan,
        add_check_parser,
        plan_spend,
        run_check,
        run_contract_check,
    )
    from .strategies import (
        InvalidBody,
        check_schema_supported,
        from_schema,
        invalid_request_bodies,
        prompts,
        request_bodies,
        seeds,
    )
    from .verification import SubmittedTask

__all__ = [
    "CassetteReport",
    "CheckReport",
    "ContractViolation",
    "Finding",
    "InvalidBody",
    "ScenarioError",
    "SpendLimitError",
    "SpendPlan",
    "SubmittedTask",
    "UnknownSchemaError",
    "UnsupportedSchemaError",
    "add_check_parser",
    "assert_conforms",
    "check_cassette",
    "check_schema_supported",
    "from_schema",
    "invalid_request_bodies",
    "plan_spend",
    "prompts",
    "request_bodies",
    "run_check",
    "run_contract_check",
    "seeds",
]

# Names whose modules import Hypothesis or httpx: loaded on first access.
_LAZY = {
    "assert_conforms": "assertions",
    "CassetteReport": "cassette_check",
    "check_cassette": "cassette_check",
    "CheckReport": "check",
    "Finding": "check",
    "SpendPlan": "check",
    "add_check_parser": "check",
    "plan_spend": "check",
    "run_check": "check",
    "run_contract_check": "check",
    "InvalidBody": "strategies",
    "check_schema_supported": "strategies",
    "from_schema": "strategies",
    "invalid_request_bodies": "strategies",
    "prompts": "strategies",
    "request_bodies": "strategies",
    "seeds": "strategies",
    "SubmittedTask": "verification",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
