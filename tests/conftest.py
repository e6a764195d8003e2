"""Shared test configuration.

In CI (``CI`` set), a skipped test of the official SDK is a failure: the SDK
working unmodified against the mock is the product's first promise. So is a
skipped browser test (the playground page): CI installs Chromium; and a skipped
PostgreSQL test: CI starts a throwaway cluster (``.ci/start-postgres``).
"""

from __future__ import annotations

import os
from collections.abc import Generator

# Loaded in every worker before any test: a test with the ``pytester`` fixture
# restores sys.modules when it ends, dropping whatever it imported first, and
# numpy cannot be imported twice in one process, so the next test in that
# worker to reach the media code would fail ("cannot load module more than
# once per process").
import numpy  # noqa: F401
import pytest
from hypothesis import settings

pytest_plugins = ["anyio"]

# No test here asserts a duration, so no example may fail for taking long: a
# busy 2-core machine ran an example in 280 ms against Hypothesis' default
# 200 ms deadline and failed a test whose subject was arithmetic.
settings.register_profile("wavespeed-mock", deadline=None)
settings.load_profile("wavespeed-mock")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    for marker, what in (
        ("sdk", "SDK"),
        ("browser", "Browser"),
        ("postgres", "PostgreSQL"),
    ):
        if report.skipped and os.environ.get("CI") and item.get_closest_marker(marker):
            report.outcome = "failed"
            report.longrepr = (
                f"{what} test skipped in CI, which is not allowed: {report.longrepr}"
            )
    return report


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
