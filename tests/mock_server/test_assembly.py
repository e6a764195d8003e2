"""Building a server: the profile and the sync wait follow the engine unless
chosen."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from wavespeed_mock.mock_server import Settings, build_server
from wavespeed_mock.mock_server.cli import main

from ._fakes import FakeEngine


class RealProgressEngine(FakeEngine):
    default_profile: ClassVar[str | None] = "engine"
    default_sync_wait_s: ClassVar[float | None] = 900.0


@pytest.mark.parametrize(
    ("engine", "chosen", "expected"),
    [
        (FakeEngine(), None, "fast"),  # the engine names none: the default
        (RealProgressEngine(), None, "engine"),  # a real engine implies its own
        (RealProgressEngine(), "instant", "instant"),  # a chosen one wins
    ],
)
def test_the_profile_is_resolved_where_the_server_is_built(
    tmp_path: Path, engine: FakeEngine, chosen: str | None, expected: str
) -> None:
    server = build_server(Settings(data_dir=tmp_path, profile=chosen), engine=engine)
    try:
        assert server.service.profile.name == expected
        assert server.settings.profile == expected
    finally:
        server.service.close()


@pytest.mark.parametrize(
    ("engine", "chosen", "expected"),
    [
        (FakeEngine(), None, 90.0),  # the engine names none: the server's default
        (RealProgressEngine(), None, 900.0),  # a real clip takes minutes
        (RealProgressEngine(), 30.0, 30.0),  # a chosen one wins
    ],
)
def test_the_sync_wait_is_resolved_where_the_server_is_built(
    tmp_path: Path, engine: FakeEngine, chosen: float | None, expected: float
) -> None:
    server = build_server(
        Settings(data_dir=tmp_path, sync_wait_s=chosen), engine=engine
    )
    try:
        assert server.settings.sync_wait_s == expected
        assert server.service.settings.sync_wait_s == expected
    finally:
        server.service.close()


def test_serve_refuses_an_option_of_another_engine(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    served: list[object] = []  # were the check missing, serve would not block
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    monkeypatch.delenv("WAVESPEED_MOCK_ENGINE", raising=False)
    code = main(["serve", "--data-dir", str(tmp_path), "--ovi-device", "1"])
    assert code == 2 and served == []
    assert "--ovi-device is an option of the 'ovi' engine" in capsys.readouterr().err


def test_reset_forgets_the_contract_violations_too(tmp_path: Path) -> None:
    server = build_server(
        Settings(data_dir=tmp_path, profile="instant", check_responses=True),
        engine=FakeEngine(),
    )
    server.service.contract_violations.append("GET /x: 200 breaks the contract")
    server.reset()
    assert server.service.contract_violations == []
