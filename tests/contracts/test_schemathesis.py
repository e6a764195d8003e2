"""schemathesis against a live server, over both contracts: 0 failures.

Every check (``--checks all``), positive and negative data, every phase
(examples, coverage, fuzzing, stateful), a fixed number of examples per
operation and a deterministic generator, so a run repeats exactly and takes a
small, fixed share of the suite. ``schemathesis.toml`` beside this file lists
the few rules a JSON Schema cannot state (content sniffing of uploads), each
with its reason; ``schemathesis_hooks.py`` forgives exactly the documented 400
for base64 output with a webhook. A failure prints
schemathesis' own report with a ``curl`` line that reproduces it.

To run the same by hand against ``wavespeed-mock serve --api-key k``::

    st --config-file tests/contracts/schemathesis.toml run contracts/openapi.yaml \
        --url http://127.0.0.1:8000 -H 'Authorization: Bearer k' --checks all \
        --mode all --max-examples 8 --generation-deterministic
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from wavespeed_mock.mock_server.http.live import LiveServer

from ..mock_server._support import checked_live_server

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
CONFIG = Path(__file__).with_name("schemathesis.toml")
"""The few rules a schema cannot state, each with its reason."""
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
"""The one rule that needs a look at the request: base64 output with a webhook."""
KEY = "schemathesis-key"
MAX_EXAMPLES = 8


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    # One key, so that schemathesis' wrong keys are refused (ST401).
    with checked_live_server(tmp_path / "data", api_keys=(KEY,)) as server:
        yield server


@pytest.mark.parametrize("document", ["openapi.yaml", "mock-control.yaml"])
def test_schemathesis_finds_nothing(
    document: str, live: LiveServer, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        str(CONTRACTS / document),
        "--url",
        live.url,
        "--header",
        f"Authorization: Bearer {KEY}",
        "--checks",
        "all",
        "--mode",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--no-color",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(HOOKS.parent), os.environ.get("PYTHONPATH")])
        ),
    }
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
