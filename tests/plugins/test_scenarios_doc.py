"""docs/scenarios.md: every scenario field has an example, and every example runs."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
from wavespeed_mock.mock_server.features.scenarios import Scenario

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"
BOOKKEEPING = {"set_at", "serial", "uses", "draws"}


def examples() -> str:
    text = DOC.read_text(encoding="utf-8")
    return "\n\n".join(re.findall(r"```python\n(.*?)```", text, re.S))


def test_every_scenario_field_has_an_example() -> None:
    code = examples()
    missing = [
        f.name
        for f in fields(Scenario)
        if f.name not in BOOKKEEPING and not re.search(rf"\b{f.name}\b", code)
    ]
    assert missing == [], f"docs/scenarios.md has no example using {missing}"


def test_every_example_passes_in_a_downstream_suite(pytester: pytest.Pytester) -> None:
    code = examples()
    pytester.makepyfile(test_scenario_examples=code)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, (
        result.stdout.str()[-3000:]
    )
    tests = len(re.findall(r"^def test_", code, re.M))
    assert outcomes.get("passed", 0) >= tests
