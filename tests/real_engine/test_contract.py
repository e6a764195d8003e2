"""The contract check against a live server running this engine on the stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings
from wavespeed_mock.plugins.check import run_contract_check
from wavespeed_mock.real_engine import FACTORY_ENV

from .conftest import FAKE_FACTORY


def test_the_contract_check_passes_against_serve_engine_ovi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # What `wavespeed-mock serve --engine ovi` builds, with the stand-in injected
    # through the environment as a user of the server would.
    monkeypatch.setenv(FACTORY_ENV, FAKE_FACTORY)
    monkeypatch.setenv("WAVESPEED_FAKE_OVI_FRAME", "48x64")
    monkeypatch.setenv("WAVESPEED_FAKE_OVI_RECORD", str(tmp_path / "calls.jsonl"))
    settings = Settings(
        data_dir=tmp_path / "data", port=0, engine="ovi", profile="engine"
    )
    with LiveServer(settings) as server:
        report = run_contract_check(
            server.url, "test-key", timeout_s=60, poll_interval_s=0.05
        )
    assert report.ok, report.render()
    calls = (tmp_path / "calls.jsonl").read_text().splitlines()
    assert len(calls) >= 2  # one clip per model went through the stand-in
