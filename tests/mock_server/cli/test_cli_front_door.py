"""The command line's polish: version, ``python -m``, the banner, the access log,
``control``'s options and journal, a closed pipe, ``render -o`` and file modes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO

import httpx
import pytest
from wavespeed_mock.mock_server.cli.main import BROKEN_PIPE_STATUS, main
from wavespeed_mock.mock_server.media import write_clip

BANNER = re.compile(r"serving the WaveSpeedAI API at http://127\.0\.0\.1:(\d+) ")
ACCESS_LINE = re.compile(r"^(GET|POST) (\S+) (\d{3}) (\d+\.\d)ms$")


class Served:
    """``wavespeed-mock serve --port 0 --access-log`` in a subprocess.

    A thread reads its standard error line by line (a full pipe would stall the
    server), and tests wait on the lines they expect.
    """

    def __init__(self, data: Path) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wavespeed_mock.mock_server.cli.main",
                "serve",
                "--port",
                "0",
                "--data-dir",
                str(data),
                "--profile",
                "instant",
                "--access-log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stderr is not None
        self.stderr: IO[str] = self.process.stderr
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        banner = self.wait_for(lambda line: "serving" in line)
        found = BANNER.search(banner)
        assert found, f"the banner names no port: {banner!r}"
        self.port = int(found.group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        for line in self.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, wanted: Callable[[str], object], timeout_s: float = 60) -> str:
        """The first line (from the start) that ``wanted`` accepts, once it is there."""
        with self._changed:
            found: list[str] = []

            def seen() -> bool:
                found[:] = [line for line in self.lines if wanted(line)][:1]
                return bool(found) or self.process.poll() is not None

            self._changed.wait_for(seen, timeout_s)
            assert found, f"no such line; the server wrote {self.lines[-20:]!r}"
            return found[0]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)
        self.stderr.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("front-door"))
    yield server
    server.stop()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert (
        capsys.readouterr().out.strip() == f"wavespeed-mock {version('wavespeed-mock')}"
    )


def test_python_dash_m_runs_the_command() -> None:
    from importlib.metadata import version

    ran = subprocess.run(
        [sys.executable, "-m", "wavespeed_mock.mock_server", "--version"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == f"wavespeed-mock {version('wavespeed-mock')}"


def test_banner_names_the_bound_port_and_the_server_answers_at_once(
    served: Served,
) -> None:
    # The banner was read before any request: the port in it already listens.
    assert httpx.get(served.url + "/_mock/health").status_code == 200


def test_access_log_has_one_line_per_request(served: Served) -> None:
    httpx.get(served.url + "/nowhere?token=secret")
    httpx.post(served.url + "/api/v3/character-ai/ovi/text-to-video", json={})
    lines = [
        served.wait_for(lambda line: " /nowhere " in line),
        served.wait_for(lambda line: line.startswith("POST /api/v3/")),
    ]
    first, second = (ACCESS_LINE.match(line) for line in lines)
    assert first and second, lines
    assert first.group(1, 2, 3) == ("GET", "/nowhere", "404")
    assert "secret" not in lines[0]  # the query string is not logged
    assert second.group(1, 3) == ("POST", "401")


def test_access_log_is_off_by_default(tmp_path: Path) -> None:
    from wavespeed_mock.mock_server import Settings

    assert Settings().access_log is False
    assert Settings.from_env({"WAVESPEED_MOCK_ACCESS_LOG": "1"}).access_log is True


def test_a_taken_port_is_a_clear_error_not_a_traceback(
    served: Served, tmp_path: Path
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wavespeed_mock.mock_server.cli.main", "serve", "--port", str(served.port),
         "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert f"cannot listen on 127.0.0.1:{served.port}" in out.stderr
    assert "Traceback" not in out.stderr
    assert "serving" not in out.stderr  # no banner for a server that never ran


def test_control_reads_the_port_as_serve_does_and_takes_options_anywhere(
    served: Served,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WAVESPEED_MOCK_PORT", str(served.port))
    assert main(["control", "state"]) == 0
    assert json.loads(capsys.readouterr().out)["profile"] == "instant"
    monkeypatch.setenv("WAVESPEED_MOCK_PORT", "9")  # nothing listens there
    assert main(["control", "state", "--port", str(served.port)]) == 0
    assert main(["control", "--port", str(served.port), "state"]) == 0
    assert main(["control", "state", "--url", served.url]) == 0
    capsys.readouterr()
    assert main(["control", "state"]) == 2
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err


def test_control_journal_limit_and_since_newest_last(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    for n in range(3):
        httpx.get(f"{served.url}/journal-test-{n}")
    served.wait_for(lambda line: " /journal-test-2 " in line)
    assert main(["control", "journal", "--port", str(served.port), "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    items = [json.loads(line) for line in lines]
    assert [i["path"] for i in items] == ["/journal-test-1", "/journal-test-2"]
    stamp = datetime.fromisoformat(items[-1]["at"].replace("Z", "+00:00"))
    assert stamp >= before  # an ISO time, not an epoch number

    later = (stamp + timedelta(hours=1)).isoformat()
    assert (
        main(["control", "journal", "--port", str(served.port), "--since", later]) == 0
    )
    assert capsys.readouterr().out == ""
    since = before.strftime("%Y-%m-%dT%H:%M:%S")  # no zone: read as UTC
    assert main(["control", "journal", "--port", str(served.port), "--since", since,
                 "--limit", "0"]) == 0  # fmt: skip
    paths = [json.loads(line)["path"] for line in capsys.readouterr().out.splitlines()]
    assert paths[-3:] == [f"/journal-test-{n}" for n in range(3)]


def test_journal_query_errors_name_the_parameter(served: Served) -> None:
    bad = httpx.get(served.url + "/_mock/journal", params={"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.json()["message"]
    bad = httpx.get(served.url + "/_mock/journal", params={"limit": "-3"})
    assert bad.status_code == 400 and "limit" in bad.json()["message"]


def test_a_closed_pipe_ends_control_quietly(served: Served) -> None:
    # More journal than a pipe buffers (64 KiB), so the writer meets the closed end.
    with httpx.Client(base_url=served.url) as client:
        for n in range(40):
            client.get(f"/pipe-filler-{n:02d}-" + "x" * 1800)
    reader = subprocess.Popen(
        [sys.executable, "-m", "wavespeed_mock.mock_server.cli.main", "control", "journal",
         "--port", str(served.port), "--limit", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert reader.stdout is not None and reader.stderr is not None
    assert reader.stdout.readline()  # like `| head -1`
    reader.stdout.close()
    assert reader.wait(60) == BROKEN_PIPE_STATUS
    err = reader.stderr.read().decode()
    reader.stderr.close()
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_render_refuses_a_missing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing" / "clip.mp4"
    assert main(["render", "--prompt", "p", "-o", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not missing.parent.exists()


def test_rendered_files_are_readable_by_all(tmp_path: Path) -> None:
    import numpy as np

    clip = tmp_path / "clip.mp4"
    frames = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    write_clip(frames, np.zeros((4410, 2), dtype=np.float32), 44_100, clip, fps=24)
    assert stat.S_IMODE(clip.stat().st_mode) == 0o644


# -- no delayed ACK: a response is not held back waiting for the client ---------------


def _nodelay_of_accepted(listening: socket.socket) -> int:
    """TCP_NODELAY of a connection asyncio accepts on ``listening``."""

    async def accept_one() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connect(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=listening)
        async with server:
            port = listening.getsockname()[1]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            value = await asyncio.wait_for(accepted, 30)
            writer.close()
            return value

    return asyncio.run(accept_one())


def test_serve_s_socket_gets_tcp_nodelay_on_every_connection() -> None:
    # Without it each answer's body waited for the client's delayed ACK of its
    # headers (44 ms a request, measured with httpx against `serve`).
    from wavespeed_mock.mock_server.cli.serve import _bind

    assert _nodelay_of_accepted(_bind("127.0.0.1", 0)) != 0


def test_a_live_server_s_connections_have_tcp_nodelay(tmp_path: Path) -> None:
    from wavespeed_mock.mock_server.http.live import LiveServer
    from wavespeed_mock.mock_server.settings import Settings

    server = LiveServer(Settings(data_dir=tmp_path, port=0, profile="instant"))
    try:
        with httpx.Client(base_url=server.start().url) as client:
            assert client.get("/_mock/health").status_code == 200
            # the connection stays open (keep-alive): read its option server-side
            [connection] = server._server.server_state.connections
            sock = connection.transport.get_extra_info("socket")  # type: ignore[attr-defined]
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.stop()


def test_the_banner_names_the_pages_and_a_recordings_upstream_and_cap(
    served: Served,
) -> None:
    from wavespeed_mock.mock_server.cli.serve import banner
    from wavespeed_mock.mock_server.settings import Settings

    pages = served.wait_for(lambda line: "playground" in line)
    assert f"{served.url}/ " in pages and f"{served.url}/docs" in pages
    recording = Settings(
        record=Path("tests/cassettes/run"),
        upstream="https://api.wavespeed.ai",
        record_max_submits=2,
    )
    said = "\n".join(banner(recording))
    assert "recording https://api.wavespeed.ai into tests/cassettes/run" in said
    assert "at most 2 submits" in said
    uncapped = "\n".join(banner(recording.replace(record_max_submits=None)))
    assert "no spend cap" in uncapped
    replaying = "\n".join(
        banner(Settings(replay=Path("c"), replay_speed=10, replay_miss="error"))
    )
    assert (
        "replaying c at 10x by time; a submit that matches nothing: error" in replaying
    )
