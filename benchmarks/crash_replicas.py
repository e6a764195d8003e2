"""``kill -9`` of one of two replicas on one PostgreSQL database, under submits
(or, without a database, of the one SQLite-mode process, then started again).

Two ``wavespeed-mock serve`` processes share a database and a data folder (the
``fast`` profile, a webhook on every task, ``--lease 2``). Client threads
submit to both in turn; after ``--kill-after`` seconds one replica is killed
with SIGKILL (its process group: its renders die with it) while submits, renders
and webhook deliveries are under way; the clients go on against the survivor.
Then, through the survivor only, the round checks:

- **no answered submit lost**: every id a client got a 200 for is stored;
- **no charge twice**: the key's spend is exactly one price per stored task
  (a task the killed replica made without answering is stored and charged
  once: a lost answer, as on the real API);
- **no job stuck**: every task reaches a terminal status within ``--settle``
  seconds (a render the killed replica had under way is taken over when its
  lease runs out);
- **no webhook lost**: every task's webhook arrived at least once; duplicates
  (a delivery the killed replica had sent but not recorded) are counted.

    python benchmarks/crash_replicas.py postgresql://postgres@127.0.0.1:54329/postgres
        [--rounds 5] [--clients 4] [--kill-after 3]
    python benchmarks/crash_replicas.py [--rounds 5]      # the SQLite mode
    python benchmarks/crash_replicas.py URL --workers 2   # whole hosts

With ``--workers N`` each replica is ``serve --workers N`` (a host of N worker
processes), and the kill takes the whole host: its supervisor and every worker.
With ``--render-workers K`` the two replicas are API servers that render
nothing (``serve --no-render``), K ``wavespeed-mock worker`` processes take
the renders and webhooks, and ``--kill`` says what dies mid-traffic: one
worker (``worker``, the default), a whole worker host (``host``: the first two
workers, started as one process group, as one machine's), or one of the two
API servers (``api``).

Prints each round's counts and the takeover time (kill to the last webhook);
when workers die, also the re-claim time: from the kill until every task the
dead held is held by a live process or has ended (``GET /_mock/predictions``
and ``GET /_mock/workers``).
Figures: docs/scale-out.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from bench_postgres import database
from bench_server import SERVE, free_port

T2V = "/api/v3/character-ai/ovi/text-to-video"
PRICE_MICROS = 150_000  # Ovi's price in the mock's catalogue
AUTH = {"Authorization": "Bearer crash-key"}


class Hooks:
    """A webhook receiver: which task ids arrived, how often."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.last_at = 0.0
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                hooks.seen[json.loads(body)["id"]] += 1
                hooks.last_at = time.monotonic()
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # http.server's backlog is 5: a burst of deliveries would be refused
            # and retried, and counted here as the mock's loss.
            request_queue_size = 1024
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def replica(
    data_dir: Path,
    url: str | None,
    log: Path,
    port: int | None = None,
    workers: int = 1,
    no_render: bool = False,
) -> tuple[subprocess.Popen[bytes], str]:
    """A ``serve`` process on ``url`` (None: the embedded SQLite store), with
    ``workers`` worker processes, rendering nothing with ``no_render``."""
    port = port or free_port()
    env = dict(os.environ)
    if url:
        env["WAVESPEED_MOCK_DATABASE"] = url
        env["WAVESPEED_MOCK_WORKERS"] = str(workers)
        if no_render:
            env["WAVESPEED_MOCK_NO_RENDER"] = "1"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", "--port", str(port),
             "--data-dir", str(data_dir), "--profile", "fast", "--lease", "2"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/_mock/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"a replica did not start: {log.read_text()[-2000:]}")


def render_worker(
    data_dir: Path, url: str, log: Path, group: int | None = None
) -> subprocess.Popen[bytes]:
    """A ``wavespeed-mock worker`` process on ``url``: its own session, or in
    the process group ``group`` (0: a new one; one host's processes share a
    group, killed together)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "worker", "--database", url,
             "--data-dir", str(data_dir), "--profile", "fast", "--lease", "2"],
            stdout=out, stderr=subprocess.STDOUT,
            start_new_session=group is None, process_group=group,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while "taking work" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"a worker did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc


def body(turn: int) -> dict[str, str | int]:
    """One of four bodies: after the warm-up their clips are cached (as a test
    suite's are), so a round measures the takeover, not this machine's ffmpeg."""
    return {"prompt": f"crash round {turn % 4}", "seed": 7}  # a seed: the same clip


def warm(base: str) -> list[str]:
    """Render the four bodies' clips once (a burst of uncached submits would
    queue hundreds of renders on a 2-core machine)."""
    with httpx.Client(base_url=base, headers=AUTH, timeout=60) as http:
        ids = [
            http.post(T2V, json=body(turn)).json()["data"]["id"] for turn in range(4)
        ]
        deadline = time.monotonic() + 300
        for pid in ids:
            while time.monotonic() < deadline:
                status = http.get(f"/api/v3/predictions/{pid}/result").json()["data"]
                if status["status"] == "completed":
                    break
                time.sleep(0.2)
    return ids


def one_round(
    server_url: str | None, args: argparse.Namespace, n: int
) -> dict[str, Any]:
    hooks = Hooks()
    answered: list[str] = []
    stop = threading.Event()
    with (
        tempfile.TemporaryDirectory(prefix="crash-") as tmp,
        database(server_url) if server_url else contextlib.nullcontext() as url,
    ):
        data = Path(tmp) / "data"
        bystanders: list[subprocess.Popen[bytes]] = []
        if url and args.render_workers:  # kill a render worker, not an API server
            survivor, survivor_url = replica(
                data, url, Path(tmp) / "api-0.log", no_render=True
            )
            other, other_url = replica(
                data, url, Path(tmp) / "api-1.log", no_render=True
            )
            # With --kill host, the first two workers are one "host": one
            # process group (in this session: a group is joined only there).
            on_host = 0 if args.kill == "host" else None
            workers = [render_worker(data, url, Path(tmp) / "worker-0.log", on_host)]
            host = workers[0].pid if args.kill == "host" else None
            workers += [
                render_worker(
                    data, url, Path(tmp) / f"worker-{k}.log", host if k == 1 else None
                )
                for k in range(1, args.render_workers)
            ]
            victim_url, targets = other_url, [survivor_url, other_url]
            if args.kill == "api":
                victim, bystanders = other, workers
            else:
                victim, bystanders = workers[0], [other, *workers[1:]]
                if args.kill == "host":
                    bystanders.remove(workers[1])
        elif url:
            victim, victim_url = replica(
                data, url, Path(tmp) / "replica-0.log", workers=args.workers
            )
            survivor, survivor_url = replica(
                data, url, Path(tmp) / "replica-1.log", workers=args.workers
            )
            targets = [victim_url, survivor_url]
        else:  # one process: after the kill, it is started again on its port
            victim, victim_url = replica(data, url, Path(tmp) / "replica-0.log")
            survivor_url = victim_url
            targets = [victim_url]
        warmed = warm(survivor_url)  # no webhooks: left out of the checks
        dead = threading.Event()

        def client(index: int) -> None:
            with httpx.Client(headers=AUTH, timeout=30) as http:
                turn = index
                while not stop.is_set():
                    base = (
                        targets[turn % len(targets)]
                        if not dead.is_set()
                        else survivor_url
                    )
                    turn += 1
                    try:
                        answer = http.post(
                            base + T2V, params={"webhook": hooks.url}, json=body(turn)
                        )
                    except httpx.TransportError:
                        time.sleep(0.05)  # no answer: the client knows of no task
                        continue
                    if answer.status_code == 200:
                        answered.append(answer.json()["data"]["id"])

        threads = [
            threading.Thread(target=client, args=(i,)) for i in range(args.clients)
        ]
        for t in threads:
            t.start()
        time.sleep(args.kill_after)
        dying = (
            ({victim.pid, workers[1].pid} if args.kill == "host" else {victim.pid})
            if url and args.render_workers and args.kill != "api"
            else set()
        )
        os.killpg(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        # Read after the kill: the dead start nothing more; their rows stay.
        owners, held = holdings(survivor_url, dying) if dying else (set(), set())
        if not args.render_workers or args.kill == "api":  # a dead API server
            dead.set()
        victim.wait(30)
        reclaimed: list[dict[str, float | None]] = []
        watcher = threading.Thread(
            target=lambda: reclaimed.append(
                reclaim(survivor_url, owners, held, killed_at)
            )
        )
        if owners:
            watcher.start()
        if not url:  # the SQLite mode's recovery is its restart
            port = int(victim_url.rsplit(":", 1)[1])
            survivor, _ = replica(data, None, Path(tmp) / "replica-1.log", port)
        time.sleep(1.0)  # submits go on against the survivor
        stop.set()
        for t in threads:
            t.join()
        if owners:
            watcher.join()
        try:
            result = check(
                survivor_url, answered, hooks, args.settle, killed_at, set(warmed)
            )
            result["held"] = len(held)
            result["reclaim"] = reclaimed[0] if reclaimed else None
            # Renders begun more than once: only a task the dead held may be
            # rendered again (its render died with it); any other is a double
            # claim.
            items = httpx.get(survivor_url + "/_mock/predictions", timeout=30).json()
            again = {
                i["id"] for i in items["data"]["items"] if i["render"]["attempts"] > 1
            }
            result["rendered_again"] = len(again)
            result["double_claims"] = len(again - held) if held else len(again)
        finally:
            for proc in (survivor, *bystanders):
                proc.terminate()
                proc.wait(30)
    return result


def holdings(base: str, pids: set[int]) -> tuple[set[str], set[str]]:
    """The ids of the processes ``pids`` (``GET /_mock/workers``), and the
    tasks whose work they hold (``GET /_mock/predictions``, which lists them
    all: held by them and not ended: a render, or a webhook when it ends)."""
    with httpx.Client(base_url=base, timeout=30) as http:
        processes = http.get("/_mock/workers").json()["data"]["processes"]
        owners = {p["id"] for p in processes if p["pid"] in pids}
        items = http.get("/_mock/predictions").json()["data"]["items"]
    return owners, {
        i["id"]
        for i in items
        if i["render"]["worker"] in owners
        and i["status"] not in ("completed", "failed")
    }


def reclaim(
    base: str, owners: set[str], rendering: set[str], killed_at: float
) -> dict[str, float | None]:
    """Seconds from the kill until: every dead process is seen dead (its
    liveness lock free: its work is free to take from then), the first of
    the tasks it held is taken by a live process (or ended), and all of them
    are (a render waits for a free slot of a live worker; a webhook owed
    needs none). None: not within 120 s."""
    seen: dict[str, float | None] = {"dead": None, "first": None, "all": None}
    with httpx.Client(base_url=base, timeout=30) as http:
        while time.monotonic() < killed_at + 120 and seen["all"] is None:
            processes = http.get("/_mock/workers").json()["data"]["processes"]
            alive = {p["id"] for p in processes if p["alive"]}
            items = http.get("/_mock/predictions").json()["data"]["items"]
            now = time.monotonic() - killed_at
            if seen["dead"] is None and not owners & alive:
                seen["dead"] = now
            moved = [
                i["status"] in ("completed", "failed") or i["render"]["worker"] in alive
                for i in items
                if i["id"] in rendering
            ]
            if seen["first"] is None and (any(moved) or not moved):
                seen["first"] = now
            if all(moved) and seen["dead"] is not None:
                seen["all"] = now
            time.sleep(0.05)
    return seen


def check(
    base: str,
    answered: list[str],
    hooks: Hooks,
    settle_s: float,
    killed_at: float,
    warmed: set[str],
) -> dict[str, Any]:
    with httpx.Client(base_url=base, headers=AUTH, timeout=30) as http:
        # Every stored task: the answered ones, and any the killed replica made
        # but could not answer (the client got no 200: a lost answer).
        items = http.get("/_mock/predictions").json()["data"]["items"]
        stored = {item["id"] for item in items} - warmed
        deadline = time.monotonic() + settle_s
        pending = set(stored)
        while pending and time.monotonic() < deadline:
            for pid in list(pending):
                view = http.get(f"/api/v3/predictions/{pid}/result").json()["data"]
                if view["status"] in ("completed", "failed"):
                    pending.discard(pid)
            time.sleep(0.2)
        while (
            any(hooks.seen[pid] == 0 for pid in stored) and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        ledger = http.get("/_mock/ledger").json()["data"]["items"]
        stuck_statuses = Counter(
            http.get(f"/api/v3/predictions/{pid}/result").json()["data"]["status"]
            for pid in pending
        )
    spent_micros = round(sum(row["spent"] for row in ledger) * 1_000_000)
    return {
        "answered": len(answered),
        "stored": len(stored),
        "lost": len(set(answered) - stored),
        "stuck": len(pending),
        "charged_twice": spent_micros != len(items) * PRICE_MICROS,
        "items": len(items),
        "spent_micros": spent_micros,
        "webhooks_missing": sum(1 for pid in stored if hooks.seen[pid] == 0),
        "webhooks_duplicated": sum(1 for pid in stored if hooks.seen[pid] > 1),
        "takeover_s": max(0.0, hooks.last_at - killed_at),
        "stuck_statuses": dict(stuck_statuses),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "server",
        nargs="?",
        help="a PostgreSQL server URL (a database per round); without it, the "
        "SQLite mode: one process, killed and started again",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--kill-after", type=float, default=3.0)
    parser.add_argument("--settle", type=float, default=120.0)
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes per replica (a host)"
    )
    parser.add_argument(
        "--render-workers",
        type=int,
        default=0,
        help="API replicas with --no-render and this many `worker` processes",
    )
    parser.add_argument(
        "--kill",
        choices=("worker", "host", "api"),
        default="worker",
        help="with --render-workers: one worker, a host of two workers, or an API",
    )
    args = parser.parse_args()
    if args.kill == "host" and args.render_workers < 3:
        parser.error("--kill host takes two workers: give --render-workers 3 or more")
    failed = False
    for n in range(1, args.rounds + 1):
        r = one_round(args.server, args, n)
        bad = (
            r["lost"]
            or r["stuck"]
            or r["charged_twice"]
            or r["webhooks_missing"]
            or r.get("double_claims")
        )
        failed |= bool(bad)
        print(
            f"round {n}: {r['answered']} answered submits, {r['stored']} stored "
            f"({r['stored'] - r['answered'] + r['lost']} without an answer that "
            f"reached the client); lost {r['lost']}, stuck "
            f"{r['stuck']} {r['stuck_statuses'] or ''}, charged twice {'yes' if r['charged_twice'] else 'no'} "
            f"(spent {r['spent_micros'] / 1e6:.2f} USD for {r['items']} tasks, the 4 of the warm-up included), "
            f"webhooks missing {r['webhooks_missing']}, delivered twice "
            f"{r['webhooks_duplicated']}; last webhook {r['takeover_s']:.1f} s "
            "after the kill"
            + (
                f"; renders begun twice {r.get('rendered_again', 0)}"
                f" (double claims {r.get('double_claims', 0)})"
            )
            + (
                f"; the dead seen dead {_s(r['reclaim']['dead'])} after the kill, "
                f"{r['held']} tasks it held: the first taken again "
                f"{_s(r['reclaim']['first'])}, all {_s(r['reclaim']['all'])} after"
                if r.get("reclaim")
                else ""
            ),
            flush=True,
        )
    print("FAILED" if failed else "every round: nothing lost, nothing charged twice")
    return 1 if failed else 0


def _s(seconds: float | None) -> str:
    return "NOT within 120 s" if seconds is None else f"{seconds:.2f} s"


if __name__ == "__main__":
    raise SystemExit(main())
