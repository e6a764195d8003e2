"""``serve --workers N`` (``cli/workers.py``): N processes on one port, one state."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from wavespeed_mock.mock_server.cli import main
from wavespeed_mock.mock_server.settings import Settings, SettingsError

from ..._net import free_port
from .._support import T2V, wait_until

SERVE = "from wavespeed_mock.mock_server.cli import main; raise SystemExit(main())"
KEY = {"Authorization": "Bearer workers-key"}


def test_more_than_one_worker_needs_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--workers", "2", "--data-dir", str(tmp_path)]) == 2
    said = capsys.readouterr().err
    assert "--workers 2" in said and "--database postgresql://" in said


def test_record_and_replay_stay_in_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cassette = tmp_path / "cassette.jsonl"
    code = main(
        ["serve", "--workers", "2", "--database", "postgresql://u@127.0.0.1:1/db",
         "--data-dir", str(tmp_path), "--record", str(cassette)]
    )  # fmt: skip
    assert code == 2
    assert "drop --workers" in capsys.readouterr().err


@pytest.mark.parametrize("workers", [0, 65])
def test_the_worker_count_is_bounded(workers: int) -> None:
    with pytest.raises(SettingsError, match="workers"):
        Settings(workers=workers)


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (Linux's /proc), the workers among them."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            found |= {int(c) for c in (task / "children").read_text().split()}
    return {c for c in found if _is_worker(c)}


def _is_worker(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return b"spawn_main" in command and _alive(pid)


@pytest.fixture
def two_workers(
    database: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", "--workers", "2", "--database", database,
         "--port", str(port), "--data-dir", str(tmp_path / "data"), "--profile", "instant"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(url + "/_mock/health", timeout=2).status_code == 200
        return False

    try:
        wait_until(answering, timeout_s=90, what="the workers answering")
        wait_until(lambda: "2 worker processes" in (tmp_path / "serve.log").read_text(),
                   timeout_s=90, what="the banner")  # fmt: skip
        yield process, url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        log.close()


def submit_and_poll_each_on_a_new_connection(url: str, count: int) -> list[str]:
    ids = []
    for n in range(count):
        answer = httpx.post(url + T2V, json={"prompt": f"clip {n}", "seed": 1},
                            headers=KEY, timeout=30)  # fmt: skip
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["data"]["id"])
    for task in ids:
        poll = httpx.get(
            f"{url}/api/v3/predictions/{task}/result", headers=KEY, timeout=30
        )
        assert poll.status_code == 200, poll.text
    return ids


@pytest.mark.postgres
def test_two_workers_serve_one_state_and_a_dead_one_is_replaced(
    two_workers: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, url = two_workers
    first = children(process.pid)
    assert len(first) == 2
    # Every connection a new one: the kernel hands them to either worker, and
    # each task is found by whichever takes its poll.
    ids = submit_and_poll_each_on_a_new_connection(url, 20)
    listed = httpx.get(url + "/api/v3/predictions", headers=KEY, timeout=30).json()
    assert {item["id"] for item in listed["data"]["items"]} >= set(ids)

    victim = sorted(first)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: len(children(process.pid)) == 2 and victim not in children(process.pid),
        timeout_s=90,
        what="a replacement worker",
    )
    again = submit_and_poll_each_on_a_new_connection(url, 10)
    for task in ids + again:
        poll = httpx.get(
            f"{url}/api/v3/predictions/{task}/result", headers=KEY, timeout=30
        )
        assert poll.status_code == 200

    serving = children(process.pid)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    # Stopped and reaped by the parent before it exited.
    assert not any(Path(f"/proc/{pid}").exists() for pid in serving)


@pytest.mark.postgres
def test_workers_stop_when_their_supervisor_is_killed(
    two_workers: tuple[subprocess.Popen[bytes], str],
) -> None:
    """SIGKILL of the parent alone: its workers notice and stop by themselves,
    so that no orphan goes on answering on the port."""
    process, url = two_workers
    workers = children(process.pid)
    assert len(workers) == 2
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    def gone() -> bool:
        return not any(_alive(pid) for pid in workers)

    wait_until(gone, timeout_s=90, what="the orphaned workers stopped")
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/_mock/health", timeout=5)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
