"""The contract check against a live server running this engine on the stand-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings
from wavespeed_mock.plugins.check import run_contract_check
from wavespeed_mock.real_engine import FACTORY_ENV, VARIANTS

from .conftest import FAKE_FACTORY


def fake_server_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What `wavespeed-mock serve --engine ovi` builds, with the stand-in injected
    through the environment as a user of the server would."""
    monkeypatch.setenv(FACTORY_ENV, FAKE_FACTORY)
    monkeypatch.setenv("WAVESPEED_FAKE_OVI_FRAME", "48x64")
    monkeypatch.setenv("WAVESPEED_FAKE_OVI_RECORD", str(tmp_path / "calls.jsonl"))
    monkeypatch.delenv("WAVESPEED_FAKE_OVI_LOAD", raising=False)
    return tmp_path / "calls.jsonl"


@pytest.mark.parametrize(
    ("variant", "devices"),
    [
        ("720x720_5s", None),
        ("960x960_5s", None),
        # Ovi's 10 s variant: the engine declares its clip length, the check reads it.
        ("960x960_10s", None),
        ("720x720_5s", "0,1"),
    ],
)
def test_the_contract_check_passes_against_serve_engine_ovi(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variant: str,
    devices: str | None,
):
    calls = fake_server_env(tmp_path, monkeypatch)
    options: dict[str, Any] = {"variant": variant, "devices": devices}
    settings = Settings(
        data_dir=tmp_path / "data",
        port=0,
        engine="ovi",
        profile="engine",
        engine_options=options,
    )
    with LiveServer(settings) as server:
        state = httpx.get(f"{server.url}/_mock/state").json()["data"]
        report = run_contract_check(
            server.url, "test-key", timeout_s=60, poll_interval_s=0.05
        )
    assert report.ok, report.render()
    assert state["clip_duration_s"] == pytest.approx(VARIANTS[variant].duration_s)
    lines = calls.read_text().splitlines()
    assert len(lines) >= 2  # one clip per model went through the stand-in
    rendered = [f for f in report.findings if f.name.endswith("/output")]
    seconds = "24 fps, 10.0" if variant.endswith("10s") else "24 fps, 5.0"
    assert rendered and all(seconds in f.detail for f in rendered), rendered


def test_a_relative_data_folder_from_another_directory_serves_its_clips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # The worker runs in the Ovi checkout; a relative --data-dir is the server's.
    fake_server_env(tmp_path, monkeypatch)
    checkout = tmp_path / "Ovi"
    checkout.mkdir()
    here = tmp_path / "elsewhere"
    here.mkdir()
    monkeypatch.chdir(here)
    settings = Settings(
        data_dir=Path("relative-data"),
        port=0,
        engine="ovi",
        profile="engine",
        engine_options={"checkout": checkout},
    )
    with LiveServer(settings) as server:
        report = run_contract_check(
            server.url,
            "test-key",
            models=["character-ai/ovi/text-to-video"],
            timeout_s=60,
            poll_interval_s=0.05,
        )
    assert report.ok, report.render()
    assert list((here / "relative-data" / "outputs").glob("*.mp4"))
    assert not (checkout / "relative-data").exists()
