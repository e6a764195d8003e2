"""The pytest plugin: registered through the ``pytest11`` entry point as ``wavespeed``.

Light to import: fixtures import the server, httpx and the SDK only when used.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wavespeed", "wavespeed-mock")
    group.addoption(
        "--wavespeed-base-url",
        default=None,
        help="run the wavespeed contract check against this base URL "
        "(the mock, the real API, or a server running the real engine)",
    )
    group.addoption(
        "--wavespeed-api-key",
        default=None,
        help="API key for --wavespeed-base-url (default: $WAVESPEED_API_KEY)",
    )
    group.addoption(
        "--wavespeed-max-spend",
        type=float,
        default=None,
        help="most dollars the contract check may spend (default: one clip per model)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "wavespeed(**settings): configure the wavespeed mock server for this test "
        "(profile='instant', strict=True, api_keys=(...), ...)",
    )
