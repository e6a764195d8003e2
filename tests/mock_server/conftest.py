"""Fixtures for the server tests: a live server on a free port, with a fake engine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from wavespeed_mock.mock_server.core.engine import Engine
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings

from ._fakes import FakeEngine
from ._support import TEST_DATABASE, fresh_database

AUTH = {"Authorization": "Bearer test-key"}

StartServer = Callable[..., LiveServer]


@pytest.fixture
def start_server(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[StartServer]:
    """Start a live server; every response it sends is checked against the contract.

    A ``server_settings(...)`` mark on the test or its module gives default
    settings, which the call's own override."""
    started: list[LiveServer] = []
    marked = request.node.get_closest_marker("server_settings")
    defaults = dict(marked.kwargs) if marked is not None else {}

    def start(
        *,
        engine: Engine | str | None = None,
        data_dir: Path | None = None,
        **settings: Any,
    ) -> LiveServer:
        options: dict[str, Any] = {
            "profile": "instant",
            "port": 0,
            "check_responses": True,
        }
        options.update(defaults)
        options.update(settings)
        config = Settings(data_dir=data_dir or tmp_path / "data", **options)
        # engine="synthetic" runs the real synthetic engine; the default is a fake.
        chosen = None if engine == "synthetic" else engine or FakeEngine()
        server = LiveServer(config, engine=chosen).start()  # type: ignore[arg-type]  # str excluded above
        started.append(server)
        return server

    yield start
    violations: list[str] = []
    for server in started:
        server.stop()
        violations.extend(server.service.contract_violations)
    assert violations == [], "the server sent answers that break the contract"


@pytest.fixture
def server(start_server: StartServer) -> LiveServer:
    return start_server()


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as c:
        yield c


# -- the npm SDK (shared by the tests that drive it) ------------------------------------

NPM_SDK_VERSION = "0.3.2"


@pytest.fixture(scope="session")
def wavespeed_npm_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The npm ``wavespeed`` SDK installed in a scratch folder (skipped without npm)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (.ci/run installs them)")
    folder = tmp_path_factory.mktemp("npm-sdk")
    installed = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent",
         f"wavespeed@{NPM_SDK_VERSION}"],
        cwd=folder, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if installed.returncode != 0:
        pytest.skip(f"npm install wavespeed failed: {installed.stderr[-500:]}")
    return folder


def run_node(sdk: Path, name: str, script: str, env: dict[str, str]) -> dict[str, Any]:
    """Run ``script`` (saved as ``name`` beside the installed SDK) under node.

    The script prints its outcome as JSON on the last line of stdout.
    """
    path = sdk / name
    if not path.exists():
        path.write_text(script)
    ran = subprocess.run(
        ["node", str(path)],
        cwd=sdk,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = [line for line in ran.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no outcome from node: {ran.stdout[-800:]} {ran.stderr[-800:]}"
    outcome: dict[str, Any] = json.loads(lines[-1])
    return outcome


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL server URL (``WAVESPEED_MOCK_TEST_DATABASE``), checked once;
    a skip with the reason where none answers (CI may not skip: the marker)."""
    if not TEST_DATABASE:
        pytest.skip(
            "no PostgreSQL: set WAVESPEED_MOCK_TEST_DATABASE=postgresql://... "
            "(.ci/start-postgres starts a throwaway cluster)"
        )
    psycopg = pytest.importorskip("psycopg", reason="pip install -e '.[test]'")
    try:
        psycopg.connect(TEST_DATABASE, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {TEST_DATABASE} does not answer: {exc}")
    return TEST_DATABASE


@pytest.fixture
def database(postgres_server: str) -> Iterator[str]:
    """A fresh database of this test's own on that server (dropped after it)."""
    yield from fresh_database(postgres_server)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server in this process, for ``--outputs s3://...`` (the test
    extra installs it; credentials are moto's placeholders)."""
    from moto.server import ThreadedMotoServer

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    """A fresh bucket on that server: its ``s3://`` URL with a prefix."""
    import uuid

    import boto3

    name = f"mock-{uuid.uuid4().hex[:20]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return f"s3://{name}/team/mock"
