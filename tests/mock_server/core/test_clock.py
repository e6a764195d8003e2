"""The clock's range: a virtual clock stops at LATEST_TIME, as the control contract says."""

from __future__ import annotations

from importlib import resources

import yaml
from wavespeed_mock.mock_server.core.clock import LATEST_TIME, ServerClock
from wavespeed_mock.mock_server.core.prediction import format_timestamp


def test_a_virtual_clock_stops_at_the_end_of_its_range() -> None:
    clock = ServerClock(virtual=True, start=1_700_000_000.0)
    assert clock.advance(1e17) == LATEST_TIME
    assert clock.set(1e300) == LATEST_TIME
    # every timestamp the server writes stays formattable there, offsets included
    assert format_timestamp(clock.now() + 365 * 86400).startswith("3001-")


def test_the_control_contract_documents_the_same_range() -> None:
    text = (
        resources.files("wavespeed_mock.contracts")
        .joinpath("mock-control.yaml")
        .read_text(encoding="utf-8")
    )
    body = yaml.safe_load(text)["paths"]["/_mock/clock"]["post"]["requestBody"]
    fields = body["content"]["application/json"]["schema"]["properties"]
    assert fields["advance"]["maximum"] == LATEST_TIME
    assert fields["set"]["maximum"] == LATEST_TIME
