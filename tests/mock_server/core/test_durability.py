"""Durability: a task the server answered 200 for survives ``kill -9``.

Black-box: the server runs as its own process (the ``serve`` command), is killed
with SIGKILL at a random moment under concurrent submits, and is started again
on the same data folder and port. Every id that got a 200 must then be found,
reach a terminal status, and be charged in the ledger; killed renders must leave
no temporary files behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from wavespeed_mock.contracts import refunded_statuses, terminal_statuses
from wavespeed_mock.mock_server.core.keys import key_id
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings

from ..._net import free_port
from .._support import T2V, Receiver, wait_until

AUTH = {"Authorization": "Bearer k"}
PROMPT = "A lighthouse in a storm. <S>Hold on.<E> <AUDCAP>Wind and rain.<ENDAUDCAP>"
PRICE = 0.15
"""One Ovi clip of the default length, as the model registry prices it."""
SUBMITTERS = 8
ROUNDS = 2
START_TIMEOUT_S = 60.0
TERMINAL_TIMEOUT_S = 120.0
SERVE = "from wavespeed_mock.mock_server.cli import main; raise SystemExit(main())"


class ServerProcess:
    """``wavespeed-mock serve`` in a child process, started and killed at will."""

    def __init__(
        self, data_dir: Path, port: int, logs: Path, options: Sequence[str] = ()
    ) -> None:
        self.data_dir = data_dir
        self.options = list(options)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.logs = logs
        self.runs = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.runs += 1
        log = self.logs / f"server-{self.runs}.log"
        with log.open("wb") as out:
            # A session of its own, so that the kill takes the server's ffmpeg
            # children with it, as a container or service manager kill does; an
            # orphaned encoder would otherwise finish a temporary file later.
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVE, "serve", "--port", str(self.port),
                 "--data-dir", str(self.data_dir), "--profile", "fast",
                 *self.options],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"the server exited with {self.proc.returncode}:\n{self.log()}"
                )
            try:
                if httpx.get(self.url + "/_mock/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(
            f"the server did not answer within {START_TIMEOUT_S} s:\n{self.log()}"
        )

    def kill(self) -> None:
        """SIGKILL the server and everything it started; wait until it is gone."""
        if self.proc is None:
            return
        # The group outlives a server that died on its own while ffmpeg runs.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def log(self) -> str:
        path = self.logs / f"server-{self.runs}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@pytest.fixture
def wavespeed_server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path / "data", free_port(), tmp_path)
    try:
        yield server
    finally:
        server.kill()


def submit_until_killed(
    server: ServerProcess, rng: random.Random, seeds: list[int]
) -> list[str]:
    """Submit from several threads, SIGKILL the server mid-stream; the ids answered 200."""
    answered: list[str] = []
    refused: list[str] = []
    progress = threading.Condition()
    stop = threading.Event()

    def submitter(seed: int) -> None:
        pick = random.Random(seed)
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            while not stop.is_set():
                body = {"prompt": PROMPT, "seed": pick.choice(seeds)}
                try:
                    response = client.post(T2V, json=body)
                except httpx.TransportError:
                    return  # the server is gone
                with progress:
                    if response.status_code == 200:
                        answered.append(str(response.json()["data"]["id"]))
                    else:
                        refused.append(f"{response.status_code} {response.text[:200]}")
                    progress.notify_all()

    target = rng.randint(20, 200)
    extra_s = rng.uniform(0.0, 0.2)
    with ThreadPoolExecutor(SUBMITTERS) as pool:
        futures = [
            pool.submit(submitter, rng.getrandbits(32)) for _ in range(SUBMITTERS)
        ]
        try:
            with progress:
                reached = progress.wait_for(
                    lambda: len(answered) >= target or bool(refused), timeout=60
                )
            assert reached, f"only {len(answered)} of {target} submits answered in 60 s"
            assert not refused, f"submits were refused: {refused[:3]}"
            time.sleep(extra_s)
        finally:
            server.kill()
            stop.set()
        for future in futures:
            future.result(timeout=60)
    with progress:
        return list(answered)


def wait_all_terminal(client: httpx.Client, ids: list[str]) -> dict[str, str]:
    """Poll every id until it is terminal; the final statuses."""
    terminal = terminal_statuses()
    statuses: dict[str, str] = {}
    lost: list[str] = []
    for pid in ids:
        response = client.get(f"/api/v3/predictions/{pid}/result")
        if response.status_code == 404:
            lost.append(pid)
        else:
            assert response.status_code == 200, response.text
            statuses[pid] = response.json()["data"]["status"]
    assert not lost, (
        f"{len(lost)} of {len(ids)} tasks answered 200 before the kill are gone "
        f"after the restart, e.g. {lost[:3]}"
    )
    deadline = time.monotonic() + TERMINAL_TIMEOUT_S
    while time.monotonic() < deadline:
        pending = [pid for pid, status in statuses.items() if status not in terminal]
        if not pending:
            return statuses
        for pid in pending:
            response = client.get(f"/api/v3/predictions/{pid}/result")
            assert response.status_code == 200, response.text
            statuses[pid] = response.json()["data"]["status"]
        time.sleep(0.2)
    stuck = [(pid, s) for pid, s in statuses.items() if s not in terminal]
    pytest.fail(
        f"{len(stuck)} tasks not terminal {TERMINAL_TIMEOUT_S} s after the "
        f"restart: {stuck[:3]}"
    )


def check_ledger(client: httpx.Client) -> None:
    """Spend for key k is the price of each stored prediction that is not refunded."""
    stored = client.get("/_mock/predictions")
    assert stored.status_code == 200, stored.text
    items = stored.json()["data"]["items"]
    charged = [p for p in items if p["status"] not in refunded_statuses()]
    ledger = client.get("/_mock/ledger")
    assert ledger.status_code == 200, ledger.text
    spent = {row["key_id"]: row["spent"] for row in ledger.json()["data"]["items"]}
    assert spent.get(key_id("k")) == pytest.approx(PRICE * len(charged), abs=1e-6), (
        f"the ledger says key 'k' spent {spent.get(key_id('k'))!r}; the store holds "
        f"{len(items)} predictions, {len(charged)} of them not refunded "
        f"(${PRICE * len(charged):.2f})"
    )


def leftover_temporaries(data_dir: Path) -> list[Path]:
    return [*data_dir.rglob(".*.part"), *data_dir.rglob(".*.f32")]


@pytest.mark.slow
def test_tasks_answered_200_survive_sigkill(
    wavespeed_server_process: ServerProcess,
) -> None:
    server = wavespeed_server_process
    rng = random.Random(20240607)
    server.start()
    answered: list[str] = []
    for _ in range(ROUNDS):
        # Fresh seeds each round, so that some renders are cold when the kill comes.
        seeds = [rng.randrange(2**31) for _ in range(3)]
        answered += submit_until_killed(server, rng, seeds)
        server.start()
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            statuses = wait_all_terminal(client, answered)
            assert set(statuses) == set(answered)
            check_ledger(client)
        leftovers = leftover_temporaries(server.data_dir)
        assert leftovers == [], f"killed renders left temporary files: {leftovers[:5]}"


def submit_with_webhook(server: ServerProcess, receiver: Receiver) -> str:
    """Submit a task with a webhook to ``receiver``; its id once the delivery is
    under way (held unanswered by a receiver with ``hold``)."""
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        answer = client.post(
            T2V, params={"webhook": receiver.url}, json={"prompt": PROMPT}
        )
        assert answer.status_code == 200, answer.text
        task: str = answer.json()["data"]["id"]
    wait_until(lambda: len(receiver.deliveries) == 1, timeout_s=120)
    return task


def test_a_webhook_cut_by_sigkill_is_sent_after_the_restart(
    wavespeed_server_process: ServerProcess,
) -> None:
    server = wavespeed_server_process
    release = threading.Event()
    with Receiver(hold=release) as receiver:
        server.start()
        task = submit_with_webhook(server, receiver)
        # The delivery is under way, held unanswered, when the server is killed.
        server.kill()
        release.set()
        server.start()
        # Still owed, so the new process sends it.
        wait_until(lambda: len(receiver.deliveries) == 2, timeout_s=120)
        bodies = [json.loads(body) for _, body in receiver.deliveries]
        assert [b["id"] for b in bodies] == [task, task]
        assert bodies[1]["status"] == "completed"


@pytest.mark.postgres
def test_a_webhook_cut_by_sigkill_is_sent_by_another_process(
    database: str, tmp_path: Path
) -> None:
    """Two processes on one PostgreSQL database: the one that took the submit is
    killed mid-delivery; the other takes the work over once its lease ends
    (``core/leases.py``) and sends the webhook, without any restart."""
    options = ["--database", database, "--lease", "1"]
    killed = ServerProcess(tmp_path / "data", free_port(), tmp_path, options)
    survivor = Settings(
        data_dir=tmp_path / "data", port=0, profile="fast", database=database,
        lease_s=1.0,
    )  # fmt: skip
    release = threading.Event()
    with Receiver(hold=release) as receiver, LiveServer(survivor) as other:
        try:
            killed.start()
            task = submit_with_webhook(killed, receiver)
            killed.kill()
            release.set()
            wait_until(lambda: len(receiver.deliveries) == 2, timeout_s=120)
        finally:
            killed.kill()
        bodies = [json.loads(body) for _, body in receiver.deliveries]
        assert [b["id"] for b in bodies] == [task, task]
        assert bodies[1]["status"] == "completed"
        assert other.service.leases is not None and other.service.leases.taken == 1
        wait_until(
            lambda: (
                (p := other.service.store.get(task)) is not None
                and p.notified_at is not None
            ),
            what="the delivery recorded as done",
        )
