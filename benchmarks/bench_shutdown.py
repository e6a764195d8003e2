"""How long ``wavespeed-mock serve`` takes to exit on SIGTERM with sync waits running.

What it measures, on this machine: a server with ``--sync-wait 60`` on a frozen
virtual clock (so no wait ends by itself) and the ``realistic`` profile gets
``--waiters`` (default 8) sync-mode submits. Once all are stored, it sends
SIGTERM and records (a) the time until every waiting client has its answer and
(b) the time until the process has exited. Each waiter must get the 5004 body.
The target (issue 11): exit within 2 s. Prints the figures of ``--rounds``
rounds (default 5): each round's times and the worst. ``--with-webhook`` also
keeps one webhook delivery under way at SIGTERM (a receiver that reads it and
never answers, with a webhook timeout of an hour).

    python benchmarks/bench_shutdown.py --rounds 5 [--with-webhook]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import httpx
from bench_server import free_port, wait_up

T2V = "/api/v3/character-ai/ovi/text-to-video"


def held_delivery() -> tuple[str, threading.Event, socket.socket]:
    """A receiver URL whose deliveries are read and never answered."""
    listener = socket.create_server(("127.0.0.1", 0))
    arrived = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        try:
            while True:
                connection, _ = listener.accept()
                held.append(connection)
                connection.recv(65536)
                arrived.set()
        except OSError:
            return

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/hook", arrived, listener


def one_round(waiters: int, with_webhook: bool) -> tuple[float, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        WAVESPEED_MOCK_VIRTUAL_CLOCK="1",
        WAVESPEED_MOCK_WEBHOOK_TIMEOUT_S="3600",
    )
    with tempfile.TemporaryDirectory() as data:
        process = subprocess.Popen(
            [sys.executable, "-m", "wavespeed_mock.mock_server.cli.main", "serve",
             "--port", str(port), "--data-dir", data, "--profile", "realistic",
             "--sync-wait", "60"],
            env=env, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_up(url + "/_mock/health")
            answers: list[dict[str, object]] = []
            answered_at: list[float] = []

            def wait_sync() -> None:
                answer = httpx.post(
                    url + T2V,
                    json={"prompt": "waves", "enable_sync_mode": True},
                    headers={"Authorization": "Bearer bench"},
                    timeout=120,
                )
                answers.append(answer.json()["data"])
                answered_at.append(time.monotonic())

            threads = [threading.Thread(target=wait_sync) for _ in range(waiters)]
            for thread in threads:
                thread.start()
            while (
                httpx.get(url + "/_mock/state").json()["data"]["predictions"] < waiters
            ):
                time.sleep(0.02)
            if with_webhook:
                hook, arrived, _receiver = held_delivery()  # kept open for the round
                httpx.post(url + "/_mock/clock", json={"virtual": False})
                httpx.post(url + "/_mock/profile", json={"profile": "instant"})
                httpx.post(
                    url + T2V,
                    params={"webhook": hook},
                    json={"prompt": "a webhook under way"},
                    headers={"Authorization": "Bearer bench"},
                )
                if not arrived.wait(60):
                    raise SystemExit("the webhook delivery did not arrive")
            time.sleep(0.2)  # the waits are waiting
            sent = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(60)
            exited = time.monotonic()
            for thread in threads:
                thread.join(60)
            if len(answers) != waiters or any(a.get("code") != 5004 for a in answers):
                raise SystemExit(f"not every waiter got the 5004 body: {answers!r}")
            return max(answered_at) - sent, exited - sent
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--waiters", type=int, default=8)
    parser.add_argument("--with-webhook", action="store_true")
    args = parser.parse_args()
    worst = 0.0
    for n in range(1, args.rounds + 1):
        answered, exited = one_round(args.waiters, args.with_webhook)
        worst = max(worst, exited)
        print(f"round {n}: {args.waiters} sync waits answered {answered * 1000:.0f} ms "
              f"after SIGTERM; process exited after {exited * 1000:.0f} ms")  # fmt: skip
    print(f"worst exit after SIGTERM: {worst * 1000:.0f} ms (target: 2000 ms)")


if __name__ == "__main__":
    main()
