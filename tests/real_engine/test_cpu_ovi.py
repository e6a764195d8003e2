"""Ovi's real code on the CPU: ``serve --engine ovi``, and ``serve --no-render``
with a ``wavespeed-mock worker --engine ovi`` beside it, each through the
contract check.

With ``WAVESPEED_MOCK_OVI_CHECKOUT`` pointing at a character-ai/Ovi checkout and
torch plus Ovi's packages installed (no GPU, no flash-attn, no downloads), this
writes tiny random checkpoints in Ovi's file names and layouts
(``cpu_ovi/make_checkpoints.py``), starts the server as a user would, with Ovi's
real ``OviFusionEngine`` built by the CPU shims of ``cpu_ovi/shims.py``, and runs
the contract check against it: one image-to-video and one text-to-video clip
through Ovi's own ``generate``, its VAEs and its vocoder. Skipped, saying why,
where a piece is missing (CI has neither a checkout nor torch)::

    WAVESPEED_MOCK_OVI_CHECKOUT=~/Ovi python -m pytest tests/real_engine/test_cpu_ovi.py -rs

The worker's test also needs a PostgreSQL server (``WAVESPEED_MOCK_TEST_DATABASE``,
as the store tests; ``.ci/start-postgres`` starts one).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from wavespeed_mock.plugins.check import run_contract_check
from wavespeed_mock.real_engine import FACTORY_ENV
from wavespeed_mock.real_engine._setup import (
    EXTRA_MODULES,
    OVI_REQUIREMENT_MODULES,
    _module_exists,
)

from ..mock_server._support import TEST_DATABASE, fresh_database, wait_until
from .conftest import serve_in_child, stop_child

CPU_OVI = Path(__file__).with_name("cpu_ovi")
CHECKOUT_ENV = "WAVESPEED_MOCK_OVI_CHECKOUT"
# What Ovi's import path needs, as the server's start-up check lists it
# (flash-attn excepted: the shims replace it), and the tokenizer trainer.
MODULES = (*EXTRA_MODULES, *OVI_REQUIREMENT_MODULES, "sentencepiece")
LOAD_WAIT_S = 900.0
"""Bound on the server's start (the model loads on the CPU first)."""
CLIP_WAIT_S = 1800.0
"""Bound on one clip: 50 sampling steps and full-size VAEs on the CPU."""

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    checkout = os.environ.get(CHECKOUT_ENV)
    if not checkout:
        return f"{CHECKOUT_ENV} is not set (a character-ai/Ovi checkout)"
    if not (Path(checkout).expanduser() / "ovi" / "ovi_fusion_engine.py").exists():
        return f"{CHECKOUT_ENV}={checkout!r} is not an Ovi checkout"
    absent = [name for name in MODULES if not _module_exists(name)]
    if absent:
        return f"not installed: {', '.join(absent)} (torch and Ovi's requirements)"
    return None


@pytest.fixture(scope="module")
def ovi_checkout() -> Path:
    reason = _missing()
    if reason is not None:
        pytest.skip(reason)
    return Path(os.environ[CHECKOUT_ENV]).expanduser().resolve()


@pytest.fixture(scope="module")
def tiny_checkpoints(
    ovi_checkout: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    folder = tmp_path_factory.mktemp("ovi-cpu") / "ckpts"
    subprocess.run(
        [sys.executable, str(CPU_OVI / "make_checkpoints.py"), str(folder)],
        cwd=ovi_checkout,
        check=True,
        timeout=LOAD_WAIT_S,
    )
    return folder


@pytest.fixture
def cpu_ovi_server(
    ovi_checkout: Path, tiny_checkpoints: Path, tmp_path: Path
) -> Iterator[str]:
    """``wavespeed-mock serve --engine ovi`` in a child process; its base URL."""
    factory = f"{CPU_OVI / 'shims.py'}:build_cpu_ovi_engine"
    with serve_in_child(
        [
            "--engine",
            "ovi",
            "--ovi-checkout",
            str(ovi_checkout),
            "--ovi-checkpoints",
            str(tiny_checkpoints),
        ],
        tmp_path,
        env={FACTORY_ENV: factory},
        wait_s=LOAD_WAIT_S,
    ) as url:
        yield url


def test_the_contract_check_passes_against_ovi_on_the_cpu(cpu_ovi_server: str):
    checked(cpu_ovi_server)


def checked(url: str) -> None:
    """The contract check against ``url``: both clips made and passing."""
    began = time.perf_counter()
    report = run_contract_check(
        url,
        "test-key",
        timeout_s=CLIP_WAIT_S,
        poll_interval_s=1.0,
        progress=lambda line: print(f"[{time.perf_counter() - began:6.1f} s] {line}"),
    )
    print(report.render())
    assert report.ok, report.render()
    outputs = [f for f in report.findings if f.name.endswith("/output")]
    assert len(outputs) == 2 and all(f.level == "pass" for f in outputs), outputs


@pytest.fixture
def cpu_ovi_worker_api(
    ovi_checkout: Path, tiny_checkpoints: Path, tmp_path: Path
) -> Iterator[str]:
    """``serve --no-render`` on a fresh database, and a ``wavespeed-mock worker
    --engine ovi`` on the same database and data folder; the API's base URL
    once the worker takes work."""
    if not TEST_DATABASE:
        pytest.skip("no PostgreSQL: set WAVESPEED_MOCK_TEST_DATABASE=postgresql://...")
    log = tmp_path / "worker.log"
    factory = f"{CPU_OVI / 'shims.py'}:build_cpu_ovi_engine"
    with (
        contextlib.contextmanager(fresh_database)(TEST_DATABASE) as database,
        serve_in_child(["--no-render", "--database", database], tmp_path) as url,
        log.open("w") as out,
    ):
        data_dir = tmp_path / f"data-{url.rsplit(':', 1)[1]}"  # serve's own
        worker = subprocess.Popen(
            [sys.executable, "-m", "wavespeed_mock.mock_server", "worker",
             "--database", database, "--data-dir", str(data_dir),
             "--public-url", url, "--engine", "ovi",
             "--ovi-checkout", str(ovi_checkout),
             "--ovi-checkpoints", str(tiny_checkpoints)],
            env={**os.environ, "PYTHONUNBUFFERED": "1", FACTORY_ENV: factory},
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_until(
                lambda: (
                    "taking work" in log.read_text(errors="replace")
                    or worker.poll() is not None
                ),
                timeout_s=LOAD_WAIT_S,
                what="the worker loaded Ovi",
            )
            assert worker.poll() is None, log.read_text()
            yield url
        finally:
            stop_child(worker, grace_s=120)
            print(log.read_text(errors="replace")[-4000:])


def test_the_contract_check_passes_against_ovi_in_a_worker(cpu_ovi_worker_api: str):
    """The same clips through an API that renders nothing: a worker process on
    the same database takes each render with Ovi's real code."""
    import httpx

    checked(cpu_ovi_worker_api)
    items = httpx.get(cpu_ovi_worker_api + "/_mock/predictions").json()["data"]
    workers = httpx.get(cpu_ovi_worker_api + "/_mock/workers").json()["data"]
    roles = {p["id"]: p["role"] for p in workers["processes"]}
    rendered = [i["render"] for i in items["items"] if i["status"] == "completed"]
    assert rendered and all(roles.get(r["worker"]) == "worker" for r in rendered)
