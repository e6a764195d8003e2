"""``wavespeed-mock worker`` and ``serve --no-render`` (``cli/worker.py``): an API
server that renders nothing, and worker processes that take its work."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from wavespeed_mock.mock_server.cli import main
from wavespeed_mock.mock_server.http.live import LiveServer
from wavespeed_mock.mock_server.settings import Settings

from .._fakes import FakeEngine
from .._support import T2V, Receiver, wait_until

SERVE = "from wavespeed_mock.mock_server.cli import main; raise SystemExit(main())"
KEY = {"Authorization": "Bearer worker-key"}


def test_a_worker_needs_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["worker", "--data-dir", str(tmp_path)]) == 2
    assert "--database postgresql://" in capsys.readouterr().err


def test_no_render_needs_the_database(tmp_path: Path) -> None:
    from wavespeed_mock.mock_server.settings import SettingsError

    with pytest.raises(SettingsError, match="wavespeed-mock worker"):
        LiveServer(Settings(data_dir=tmp_path, port=0, no_render=True)).start()


class Worker:
    """``wavespeed-mock worker`` in a child process of its own session."""

    def __init__(
        self,
        database: str,
        data_dir: Path,
        api_url: str,
        log: Path,
        lease: str = "1",
        extra: tuple[str, ...] = (),
    ) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVE, "worker", "--database", database,
                 "--data-dir", str(data_dir), "--profile", "fast", "--lease", lease,
                 "--public-url", api_url, *extra],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_until(
            lambda: (
                "taking work" in log.read_text(errors="replace")
                or self.proc.poll() is not None
            ),
            timeout_s=90,
            what="the worker started",
        )
        assert self.proc.poll() is None, log.read_text()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture
def api(database: str, tmp_path: Path) -> Iterator[tuple[LiveServer, FakeEngine]]:
    """An API server with --no-render, and the engine it must never call."""
    engine = FakeEngine()
    settings = Settings(
        data_dir=tmp_path / "shared", port=0, profile="fast", database=database,
        no_render=True, check_responses=True, lease_s=1.0,
    )  # fmt: skip
    with LiveServer(settings, engine=engine) as server:
        yield server, engine
        assert server.service.contract_violations == []


def ended(client: httpx.Client, url: str, task: str) -> dict[str, object]:
    found: dict[str, object] = {}

    def done() -> bool:
        found.update(
            client.get(f"{url}/api/v3/predictions/{task}/result").json()["data"]
        )
        return found["status"] in ("completed", "failed")

    wait_until(done, timeout_s=120, what=f"{task} ended")
    return found


@pytest.mark.postgres
def test_workers_render_and_notify_for_an_api_that_renders_nothing(
    api: tuple[LiveServer, FakeEngine], database: str, tmp_path: Path
) -> None:
    server, engine = api
    first = Worker(database, tmp_path / "shared", server.url, tmp_path / "w1.log")
    try:
        with Receiver() as receiver, httpx.Client(headers=KEY, timeout=120) as client:
            task = client.post(
                server.url + T2V,
                params={"webhook": receiver.url},
                json={"prompt": "Worked.", "seed": 4},
            ).json()["data"]["id"]
            view = ended(client, server.url, task)
            assert view["status"] == "completed"
            [output] = view["outputs"]  # type: ignore[misc]
            assert str(output).startswith(server.url)
            clip = client.get(str(output))
            assert clip.status_code == 200 and clip.content[4:8] == b"ftyp"
            wait_until(lambda: len(receiver.deliveries) == 1, what="the webhook")
            sent = json.loads(receiver.deliveries[0][1])
            assert (sent["id"], sent["status"]) == (task, "completed")
            # Sync mode: the API waits for the worker's outcome.
            answer = client.post(
                server.url + T2V,
                json={"prompt": "Waited for.", "seed": 5, "enable_sync_mode": True},
            )
            assert answer.status_code == 200
            assert answer.json()["data"]["status"] == "completed"

            # No worker: the task waits, stored; the next worker takes it.
            first.kill()
            waiting = client.post(
                server.url + T2V, json={"prompt": "Waiting.", "seed": 6}
            ).json()["data"]["id"]
            # Stored, not rendered: the API takes no work (its engine is checked
            # below), and no worker runs.
            assert client.get(
                f"{server.url}/api/v3/predictions/{waiting}/result"
            ).json()["data"]["status"] in ("created", "processing")
            second = Worker(
                database, tmp_path / "shared", server.url, tmp_path / "w2.log"
            )
            try:
                assert ended(client, server.url, waiting)["status"] == "completed"
                # Where it ran: a worker (never the API), its one attempt.
                workers = client.get(server.url + "/_mock/workers").json()["data"]
                roles = {p["id"]: p["role"] for p in workers["processes"]}
                items = client.get(server.url + "/_mock/predictions").json()
                render = {i["id"]: i["render"] for i in items["data"]["items"]}
                assert roles[render[waiting]["worker"]] == "worker"
                assert render[waiting]["attempts"] == 1
                assert render[task]["worker"] != render[waiting]["worker"]
            finally:
                assert second.stop() == 0
        assert engine.jobs == []  # the API rendered nothing
    finally:
        first.kill()


@pytest.fixture
def s3_api(
    database: str, bucket: str, s3_endpoint: str, tmp_path: Path
) -> Iterator[LiveServer]:
    """An API server with --no-render and files in the bucket (its own data
    folder: a worker elsewhere shares no disk with it)."""
    settings = Settings(
        data_dir=tmp_path / "api", port=0, profile="fast", database=database,
        no_render=True, check_responses=True, outputs=bucket,
        s3_endpoint=s3_endpoint,
    )  # fmt: skip
    with LiveServer(settings, engine=FakeEngine()) as server:
        yield server
        assert server.service.contract_violations == []


@pytest.mark.postgres
def test_a_worker_on_another_machine_hands_its_outputs_through_s3(
    s3_api: LiveServer, database: str, bucket: str, s3_endpoint: str, tmp_path: Path
) -> None:
    """A GPU machine shares no disk with the API's: the worker (a data folder
    of its own) puts each output in the bucket before it stores the outcome,
    and the API (another data folder) serves the download from there."""
    server = s3_api
    worker = Worker(
        database, tmp_path / "gpu-machine", server.url, tmp_path / "w.log",
        extra=("--outputs", bucket, "--s3-endpoint", s3_endpoint),
    )  # fmt: skip
    try:
        with httpx.Client(headers=KEY, timeout=120) as client:
            task = client.post(
                server.url + T2V, json={"prompt": "Far away.", "seed": 3}
            ).json()["data"]["id"]
            view = ended(client, server.url, task)
            assert view["status"] == "completed", view
            [output] = view["outputs"]  # type: ignore[misc]
            assert not (tmp_path / "api" / "outputs" / f"{task}.mp4").exists()
            clip = client.get(str(output), headers={"Range": "bytes=0-99"})
            assert clip.status_code == 206 and clip.content[4:8] == b"ftyp"
            assert (tmp_path / "api" / "outputs" / f"{task}.mp4").exists()
    finally:
        assert worker.stop() == 0


# The Ovi stand-in (tests/real_engine/fake_ovi.py): Ovi's interface, no model.
FAKE_OVI = Path(__file__).parents[2] / "real_engine" / "fake_ovi.py"


@pytest.mark.postgres
def test_an_ovi_worker_on_two_gpus_renders_for_the_api_through_s3(
    s3_api: LiveServer,
    database: str,
    bucket: str,
    s3_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fleet's layout without a GPU: an API that renders nothing, and a
    ``worker --engine ovi --ovi-devices 0,1`` (one engine process per fake GPU,
    the stand-in in place of Ovi's model) on another data folder, files through
    the bucket; each task says which GPU made it, the worker lists both."""
    monkeypatch.setenv("WAVESPEED_MOCK_OVI_FACTORY", f"{FAKE_OVI}:FakeOviFusionEngine")
    monkeypatch.setenv("WAVESPEED_FAKE_OVI_RECORD", str(tmp_path / "calls.jsonl"))
    checkout = tmp_path / "Ovi"
    checkout.mkdir()
    server = s3_api
    worker = Worker(
        database, tmp_path / "gpu-host", server.url, tmp_path / "w.log",
        extra=("--engine", "ovi", "--ovi-checkout", str(checkout),
               "--ovi-devices", "0,1", "--outputs", bucket,
               "--s3-endpoint", s3_endpoint),
    )  # fmt: skip
    try:
        with httpx.Client(headers=KEY, timeout=120) as client:
            tasks = [
                client.post(
                    server.url + T2V, json={"prompt": f"GPU {n}.", "seed": n}
                ).json()["data"]["id"]
                for n in range(6)
            ]
            views = [ended(client, server.url, task) for task in tasks]
            assert [v["status"] for v in views] == ["completed"] * 6, views
            clip = client.get(str(views[0]["outputs"][0]))  # type: ignore[index]
            assert clip.status_code == 200 and clip.content[4:8] == b"ftyp"
            items = client.get(server.url + "/_mock/predictions").json()
            devices = {i["render"]["device"] for i in items["data"]["items"]}
            assert devices <= {"cuda:0", "cuda:1"} and devices
            listed = client.get(server.url + "/_mock/workers").json()["data"]
            [gpu_host] = [p for p in listed["processes"] if p["role"] == "worker"]
            assert (gpu_host["engine"], gpu_host["devices"]) == (
                "ovi",
                ["cuda:0", "cuda:1"],
            )
    finally:
        assert worker.stop() == 0, worker.log.read_text()


@pytest.mark.postgres
def test_a_worker_killed_mid_job_leaves_it_to_another_at_once(
    api: tuple[LiveServer, FakeEngine], database: str, tmp_path: Path
) -> None:
    """Workers hold their tasks for a lease of 600 s here; one killed with
    SIGKILL while it owes a webhook loses its database connections, and with
    them its liveness lock, so the other takes the task at its next look, not
    600 s later, and sends the webhook."""
    server, _ = api
    shared = tmp_path / "shared"
    with Receiver() as receiver, httpx.Client(headers=KEY, timeout=120) as client:
        # A frozen clock: a task ends only when the test moves it.
        client.post(server.url + "/_mock/clock", json={"virtual": True})
        first = Worker(database, shared, server.url, tmp_path / "w1.log", lease="600")
        try:
            task = client.post(
                server.url + T2V,
                params={"webhook": receiver.url},
                json={"prompt": "Held.", "seed": 7},
            ).json()["data"]["id"]
            # Rendered by the first worker; its webhook owed until the task ends.
            wait_until(
                lambda: (
                    (p := server.service.store.get(task)) is not None
                    and p.outcome_known
                ),
                timeout_s=120,
                what="the render",
            )
        finally:
            first.kill()
        second = Worker(database, shared, server.url, tmp_path / "w2.log", lease="600")
        try:
            client.post(server.url + "/_mock/clock", json={"advance": 3600})
            # Bounded far below the 600 s lease: only the liveness lock explains it.
            wait_until(lambda: len(receiver.deliveries) >= 1, timeout_s=120,
                       what="the webhook, sent by the second worker")  # fmt: skip
            assert json.loads(receiver.deliveries[0][1])["id"] == task
        finally:
            second.kill()


@pytest.mark.postgres
def test_the_processes_and_the_queue_are_listed(
    api: tuple[LiveServer, FakeEngine], database: str, tmp_path: Path
) -> None:
    """``GET /_mock/workers``: the API server and the workers on the database,
    the tasks free to take while no worker runs, and a dead worker that held
    nothing forgotten."""
    server, _ = api
    with httpx.Client(headers=KEY, timeout=120) as client:

        def listing() -> dict[str, Any]:
            answer = client.get(server.url + "/_mock/workers")
            assert answer.status_code == 200
            data: dict[str, Any] = answer.json()["data"]
            return data

        waiting = client.post(
            server.url + T2V, json={"prompt": "Queued.", "seed": 8}
        ).json()["data"]["id"]
        wait_until(lambda: listing()["queue"]["free"] == 1, what="the task queued")

        def roles() -> dict[str, bool]:
            return {p["role"]: p["alive"] for p in listing()["processes"]}

        worker = Worker(database, tmp_path / "shared", server.url, tmp_path / "w.log")
        try:
            wait_until(lambda: ended(client, server.url, waiting)["status"] == "completed",
                       what="the task done")  # fmt: skip
            wait_until(
                lambda: roles() == {"api": True, "worker": True}, what="both listed"
            )
            # The worker lets its lease go at its next pass after the task ends.
            wait_until(lambda: listing()["queue"] == {"free": 0, "held": 0},
                       what="the lease let go")  # fmt: skip
            [mine] = [p for p in listing()["processes"] if p["role"] == "worker"]
            assert mine["pid"] == worker.proc.pid and mine["engine"] == "synthetic"
            assert (mine["devices"], mine["state"]) == ([], "idle")
        finally:
            worker.kill()
        # Killed: gone, and forgotten since it held nothing.
        wait_until(lambda: roles() == {"api": True}, what="the dead worker forgotten")


def test_this_process_is_listed_with_the_embedded_store(tmp_path: Path) -> None:
    with LiveServer(Settings(data_dir=tmp_path, port=0, profile="instant")) as server:
        data = httpx.get(server.url + "/_mock/workers").json()["data"]
    [this] = data["processes"]
    assert this["role"] == "serve" and this["pid"] == os.getpid() and this["alive"]
    assert data["queue"] == {"free": 0, "held": 0}
