"""Stopping and read timeouts: a stop answers sync-mode waits, slow clients are cut off.

Nothing here asserts a duration: each test waits for an event (a process gone,
an answer read, a log line) under a bound generous enough for a busy machine.
The figure (SIGTERM with a sync wait running) is measured by
``benchmarks/bench_shutdown.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
from pathlib import Path

import httpx
import pytest
from wavespeed_mock.mock_server.cli.main import main
from wavespeed_mock.mock_server.settings import Settings, SettingsError

from .._support import T2V, in_thread, serve_in_subprocess, wait_until
from ..conftest import StartServer

SYNC_BODY = {"prompt": "waves", "enable_sync_mode": True}
GENEROUS_S = 30.0


# What every server here runs with: a frozen clock, so a sync wait ends only when told to.
STOPPABLE = {"profile": "realistic", "virtual_clock": True, "sync_wait_s": 60.0}


def assert_sync_timeout_body(answer: httpx.Response) -> None:
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["code"] == 5004
    assert data["status"] == "processing"
    assert "Sync mode timed out" in data["error"]


def test_sigterm_answers_a_running_sync_wait_and_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAVESPEED_MOCK_SYNC_WAIT_S", "60")
    monkeypatch.setenv("WAVESPEED_MOCK_VIRTUAL_CLOCK", "1")
    process, url = serve_in_subprocess(tmp_path)
    try:
        auth = {"Authorization": "Bearer cli-key"}
        profile = httpx.post(url + "/_mock/profile", json={"profile": "realistic"})
        assert profile.status_code == 200, profile.text
        waiter = in_thread(
            lambda: httpx.post(url + T2V, json=SYNC_BODY, headers=auth, timeout=120)
        )
        wait_until(
            lambda: httpx.get(url + "/_mock/state").json()["data"]["predictions"] == 1,
            what="the sync submit stored",
        )
        assert not waiter.done()

        process.send_signal(signal.SIGTERM)

        assert_sync_timeout_body(waiter.result(GENEROUS_S))
        # uvicorn re-raises the signal once it has shut down cleanly
        assert process.wait(GENEROUS_S) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


class HoldingReceiver:
    """A webhook receiver that reads a delivery and never answers it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.connected = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.listener.accept()
                self.held.append(connection)
                connection.recv(65536)
                self.connected.set()

    def close(self) -> None:
        for connection in self.held:
            connection.close()
        # shutdown wakes the thread blocked in accept(); close alone may not
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


def test_sigterm_cuts_a_webhook_delivery_under_way_after_half_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAVESPEED_MOCK_WEBHOOK_TIMEOUT_S", "3600")  # the attempt waits
    receiver = HoldingReceiver()
    process, url = serve_in_subprocess(tmp_path)
    try:
        submitted = httpx.post(
            url + T2V,
            params={"webhook": receiver.url},
            json={"prompt": "waves"},
            headers={"Authorization": "Bearer cli-key"},
        )
        assert submitted.status_code == 200, submitted.text
        assert receiver.connected.wait(GENEROUS_S), "no delivery reached the receiver"

        process.send_signal(signal.SIGTERM)

        assert process.wait(GENEROUS_S) in (0, -signal.SIGTERM)
        assert receiver.held, "the receiver let the delivery go"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        receiver.close()
    log = (tmp_path / "server.log").read_text()
    # not the 15 s that a stop without a signal gives deliveries
    assert "a webhook delivery still under way after 0.5 s was cut" in log, log


def test_stopping_a_live_server_answers_its_sync_waits(
    start_server: StartServer,
) -> None:
    server = start_server(**STOPPABLE)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        waiter = in_thread(
            lambda: client.post(
                T2V, json=SYNC_BODY, headers={"Authorization": "Bearer k"}
            )
        )
        wait_until(
            lambda: len(server.service.store) == 1, what="the sync submit stored"
        )
        server.stop()
        assert_sync_timeout_body(waiter.result(GENEROUS_S))


def read_answer(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """The status and JSON body of the one answer on ``sock`` (read until closed)."""
    sock.settimeout(GENEROUS_S)
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


@pytest.mark.parametrize(
    ("setting", "sent", "says"),
    [
        (
            "header_timeout_s",
            b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n",
            "Request headers not received within 0.2 s",
        ),
        (
            "body_timeout_s",
            b"POST /_mock/profile HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
            "Request body not received within 0.2 s",
        ),
    ],
    ids=["headers", "body"],
)
def test_a_request_sent_too_slowly_gets_408_and_the_server_goes_on(
    start_server: StartServer, setting: str, sent: bytes, says: str
) -> None:
    server = start_server(**STOPPABLE, **{setting: 0.2})
    with socket.create_connection(("127.0.0.1", server.settings.port)) as sock:
        sock.sendall(sent)
        status, body = read_answer(sock)
    assert (status, body["code"]) == (408, 408)
    assert says in str(body["message"])
    assert httpx.get(server.url + "/_mock/health").status_code == 200


def test_the_header_deadline_holds_for_each_request_of_a_connection(
    start_server: StartServer,
) -> None:
    server = start_server(**STOPPABLE, header_timeout_s=0.2)
    with socket.create_connection(("127.0.0.1", server.settings.port)) as sock:
        sock.settimeout(GENEROUS_S)
        sock.sendall(b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first or not first.endswith(b"}"):
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        # the same connection: a second request whose headers never end
        sock.sendall(b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        status, body = read_answer(sock)
    assert (status, body["code"]) == (408, 408)


def test_a_malformed_request_is_answered_in_the_envelope(
    start_server: StartServer,
) -> None:
    server = start_server(**STOPPABLE)
    with socket.create_connection(("127.0.0.1", server.settings.port)) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        status, body = read_answer(sock)
    assert (status, body["code"]) == (400, 400)
    assert "Invalid HTTP request" in str(body["message"])


def test_a_client_leaving_mid_body_is_one_log_line(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = start_server(**STOPPABLE)
    with socket.create_connection(("127.0.0.1", server.settings.port)) as sock:
        sock.sendall(
            f"POST {T2V} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Authorization: Bearer k\r\nContent-Length: 1000\r\n\r\n{".encode()
        )
    wait_until(
        lambda: any("went away" in r.getMessage() for r in caplog.records),
        what="the disconnect logged",
    )
    assert httpx.get(server.url + "/_mock/health").status_code == 200
    server.stop()
    lines = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(lines) == 1
    assert [r for r in caplog.records if r.exc_info] == []
    assert f"POST {T2V}" in lines[0].getMessage()
    assert os.linesep not in lines[0].getMessage()


@pytest.mark.parametrize(
    "setting",
    [
        "sync_wait_s",
        "header_timeout_s",
        "body_timeout_s",
        "webhook_timeout_s",
        "webhook_retry_base_s",
    ],
)
@pytest.mark.parametrize("seconds", [0, -1, 1e9, float("nan")])
def test_every_wait_and_timeout_setting_is_bounded(
    setting: str, seconds: float
) -> None:
    with pytest.raises(SettingsError, match=rf"{setting} is .*\(0, 3600\]"):
        Settings(**{setting: seconds})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("setting", "largest"),
    [
        ("prune_interval_s", "3600"),
        ("max_age_s", "315360000"),
        ("max_upload_age_s", "315360000"),
    ],
)
@pytest.mark.parametrize("seconds", [-1, 1e12, float("inf"), float("nan")])
def test_intervals_and_ages_are_bounded_and_zero_turns_them_off(
    setting: str, largest: str, seconds: float
) -> None:
    with pytest.raises(
        SettingsError, match=rf"{setting} is .*\(0, {largest}\] or 0 to turn it off"
    ):
        Settings(**{setting: seconds})  # type: ignore[arg-type]
    assert getattr(Settings(**{setting: 0}), setting) == 0  # type: ignore[arg-type]


def test_a_bounded_setting_names_the_bound_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["serve", "--data-dir", str(tmp_path), "--port", "0", "--body-timeout", "0"]
    assert main(argv) == 2
    assert "body_timeout_s is 0.0: give seconds in (0, 3600]" in capsys.readouterr().err
