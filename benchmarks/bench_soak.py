"""Soak: the server under sustained mixed traffic, sampled for growth.

``wavespeed-mock serve`` runs for ``--duration`` seconds under a mix of what a
team's suite and apps send: submits (eight distinct bodies, so the render cache
answers most), polls of every task every 0.2 s until it ends (created,
processing, completed, failed), 4xx answers (a bad body, an unknown task, no
key), scenario faults (failed tasks, a gateway 503 on polls, a reset
connection), webhooks to a loopback receiver, uploads, ranged downloads of the
clips, and connection churn (a share of the requests on a new connection).
Retention is set small (``--max-predictions``, default 500, and
``--max-upload-age``, default 120 s) so that the store, the uploads and the
bounded logs (the journal and the webhook log, set to 2,000 and 500 entries)
are full well before the warm-up ends.

Every ``--sample-s`` it reads the server's RSS, open file descriptors and
threads (``/proc``), the SQLite WAL's size and the data folder's size. After the
warm-up (the first ``--warmup`` share of the run) it fits a line to each and
prints its slope per hour with a 95% interval: a slope whose interval holds zero
cannot be told from flat. The baseline is the same run's: RSS at the end against
RSS just after the warm-up (target: within 10%).

    python benchmarks/bench_soak.py --duration 120                  # a 2-minute smoke run
    python benchmarks/bench_soak.py --duration 1800 --profile both  # the figure in docs/performance.md
    python benchmarks/bench_soak.py --database postgresql://postgres@127.0.0.1:54329/postgres

With ``--database`` (a PostgreSQL server; a database of the run's own is made
and dropped) the server runs in the PostgreSQL mode and ``wal_mb`` is the
database's size (``pg_database_size``) instead of the SQLite WAL's.

Traffic goes to 127.0.0.1 only; the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import SERVE, free_port, rss_mb, stop, wait_up

T2V = "/api/v3/character-ai/ovi/text-to-video"
KEY = "soak-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
BODIES = [{"prompt": f"A cinematic ocean wave, take {n}", "seed": n} for n in range(8)]
TERMINAL = {"completed", "failed"}


@dataclass
class Tally:
    """What the clients sent and what came back."""

    answers: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    submitted: int = 0
    ended: int = 0
    webhooks: int = 0

    def saw(self, kind: str, status: int, expected: set[int]) -> None:
        self.answers[f"{kind} {status}"] += 1
        if status not in expected and len(self.unexpected) < 20:
            self.unexpected.append(f"{kind}: HTTP {status}")


@dataclass
class Sample:
    at: float
    rss_mb: float
    fds: int
    threads: int
    wal_mb: float
    data_mb: float


def sample(
    pid: int, data_dir: Path, started: float, database: str | None = None
) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text()
    threads = int(
        next(
            line for line in status.splitlines() if line.startswith("Threads:")
        ).split()[1]
    )
    wal = data_dir / "state.sqlite3-wal"
    total = 0
    for root, _, files in os.walk(data_dir):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # pruned meanwhile
                total += os.stat(os.path.join(root, name)).st_size
    return Sample(
        at=time.monotonic() - started,
        rss_mb=rss_mb(pid),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=threads,
        wal_mb=(
            database_size(database)
            if database
            else (wal.stat().st_size if wal.exists() else 0)
        )
        / 2**20,
        data_mb=total / 2**20,
    )


def database_size(url: str) -> int:
    """Bytes of the PostgreSQL database ``url`` names (the store's size)."""
    import psycopg

    with psycopg.connect(url) as db:
        row = db.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def slope_per_hour(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares slope of ``ys`` over ``xs`` (seconds), per hour, and its 95% half-width."""
    n = len(xs)
    if n < 3:
        return float("nan"), float("nan")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    residuals = [y - (my + b * (x - mx)) for x, y in zip(xs, ys, strict=True)]
    se = (
        math.sqrt(sum(r * r for r in residuals) / (n - 2) / sxx)
        if sxx
        else float("nan")
    )
    return b * 3600, 1.96 * se * 3600


class Receiver:
    """A loopback webhook receiver counting deliveries."""

    def __init__(self, tally: Tally) -> None:
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                tally.webhooks += 1
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (96, 64), (20, 120, 200)).save(out, "PNG")
    return out.getvalue()


async def task_client(
    base: str, rng: random.Random, tally: Tally, hook: str, until: float
) -> None:
    """Submit, poll every 0.2 s until the task ends, download a range of its clip."""
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=60) as keep:
        while time.monotonic() < until:
            query = f"?webhook={hook}" if rng.random() < 0.1 else ""
            answer = await keep.post(T2V + query, json=rng.choice(BODIES))
            tally.saw("submit", answer.status_code, {200})
            if answer.status_code != 200:
                await asyncio.sleep(0.2)
                continue
            tally.submitted += 1
            pid = answer.json()["data"]["id"]
            data: dict[str, object] = {}
            for _ in range(600):
                churn = rng.random() < 0.2
                if churn:  # a new connection for this poll, closed after it
                    async with httpx.AsyncClient(
                        base_url=base, headers=AUTH, timeout=60
                    ) as fresh:
                        poll = await fresh.get(f"/api/v3/predictions/{pid}/result")
                else:
                    poll = await keep.get(f"/api/v3/predictions/{pid}/result")
                tally.saw(
                    "poll", poll.status_code, {200, 503}
                )  # 503: the gateway scenario
                if poll.status_code == 200:
                    data = poll.json()["data"]
                    if data["status"] in TERMINAL:
                        break
                await asyncio.sleep(0.2)
            if data.get("status") in TERMINAL:
                tally.ended += 1
            outputs = data.get("outputs") or []
            if data.get("status") == "completed" and outputs and rng.random() < 0.3:
                path = "/" + str(outputs[0]).split("/", 3)[3]  # type: ignore[index]
                try:
                    clip = await keep.get(path, headers={"Range": "bytes=0-4095"})
                    tally.saw("download", clip.status_code, {206})
                except httpx.TransportError:  # the reset scenario on downloads
                    tally.answers["download reset"] += 1


async def noise_client(
    base: str, rng: random.Random, tally: Tally, image: bytes, until: float
) -> None:
    """4xx answers, uploads and scenario changes, about five requests a second."""
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=60) as c:
        while time.monotonic() < until:
            pick = rng.random()
            if pick < 0.25:
                r = await c.post(T2V, json={"prompt": ""})
                tally.saw("bad body", r.status_code, {400})
            elif pick < 0.45:
                r = await c.get("/api/v3/predictions/" + "0" * 32 + "/result")
                tally.saw("unknown", r.status_code, {404})
            elif pick < 0.6:
                r = await c.get("/api/v3/models", headers={"Authorization": ""})
                tally.saw("no key", r.status_code, {401})
            elif pick < 0.8:
                r = await c.post(
                    "/api/v3/media/upload/binary",
                    files={"file": ("a.png", image, "image/png")},
                )
                tally.saw("upload", r.status_code, {200})
            else:
                fault = rng.choice(
                    [
                        {"scope": "next", "count": 2, "fail_code": 5003},
                        {
                            "scope": "next",
                            "count": 3,
                            "gateway_error": 503,
                            "routes": ["result"],
                        },
                        {
                            "scope": "next",
                            "count": 1,
                            "connection_fault": "reset",
                            "routes": ["output"],
                        },
                    ]
                )
                r = await c.post("/_mock/scenarios", json=fault, headers={})
                tally.saw("scenario", r.status_code, {200})
            await asyncio.sleep(0.2)


async def traffic(
    base: str, clients: int, seconds: float, hook: str, tally: Tally
) -> None:
    until = time.monotonic() + seconds
    image = png()
    rng = random.Random(7)
    jobs = [
        task_client(base, random.Random(rng.random()), tally, hook, until)
        for _ in range(clients)
    ]
    jobs.append(noise_client(base, random.Random(rng.random()), tally, image, until))
    await asyncio.gather(*jobs)


# --tracemalloc: the server traces Python allocations and writes a snapshot to
# the path in WAVESPEED_SOAK_SNAPSHOT each time it gets SIGUSR1, so that the
# soak can compare the heap after the warm-up with the heap at the end: growth
# in Python objects shows there by line, growth outside Python does not. Before
# each snapshot the server's frozen heap is collected, so garbage that waits for
# the ten-minute reclaim is not counted as growth.
TRACED_SERVE = (
    """
import gc, os, signal, tracemalloc
tracemalloc.start(12)
def dump(*_):
    gc.unfreeze()  # what the server froze, garbage included, is collected first
    gc.collect()
    tracemalloc.take_snapshot().dump(os.environ["WAVESPEED_SOAK_SNAPSHOT"])
signal.signal(signal.SIGUSR1, dump)
"""
    + SERVE
)


def snapshot(
    server: subprocess.Popen[bytes], keep_as: Path, timeout_s: float = 120.0
) -> None:
    """Ask a traced server for a heap snapshot and keep it as ``keep_as``."""
    path = keep_as.with_name("heap.snapshot")  # WAVESPEED_SOAK_SNAPSHOT
    path.unlink(missing_ok=True)
    server.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + timeout_s
    size = -1
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if path.exists() and path.stat().st_size == size:
            path.rename(keep_as)  # written whole: its size held for half a second
            return
        size = path.stat().st_size if path.exists() else -1
    raise RuntimeError(f"the server wrote no heap snapshot to {path}")


def heap_growth(before: Path, after: Path, top: int = 12) -> list[str]:
    """The lines whose traced memory grew most between two snapshots."""
    first = tracemalloc.Snapshot.load(str(before))
    last = tracemalloc.Snapshot.load(str(after))
    total = sum(s.size for s in last.statistics("filename")) - sum(
        s.size for s in first.statistics("filename")
    )
    lines = [
        f"traced Python memory: {total / 2**20:+.2f} MB from the warm-up to the end"
    ]
    for stat in last.compare_to(first, "traceback")[:top]:
        lines.append(
            f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  "
            + " <- ".join(  # the allocating line first
                f"{Path(f.filename).name}:{f.lineno}"
                for f in list(reversed(stat.traceback))[:6]
            )
        )
    return lines


def soak(profile: str, args: argparse.Namespace) -> dict[str, object]:
    if not args.database:
        return soak_on(profile, args, None)
    from bench_postgres import database

    with database(args.database) as url:
        return soak_on(profile, args, url)


def soak_on(
    profile: str, args: argparse.Namespace, url: str | None
) -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix="soak-"))
    port = free_port()
    snapshots = Path(tempfile.mkdtemp(prefix="soak-heap-"))
    env = {**os.environ, "WAVESPEED_SOAK_SNAPSHOT": str(snapshots / "heap.snapshot")}
    if url:
        env["WAVESPEED_MOCK_DATABASE"] = url
    server = subprocess.Popen(
        [sys.executable, "-c", TRACED_SERVE if args.tracemalloc else SERVE, "serve", "--port", str(port), "--data-dir", str(data_dir),
         "--profile", profile, "--api-key", KEY, "--max-predictions", str(args.max_predictions),
         "--max-upload-age", str(args.max_upload_age),
         "--journal-size", "2000", "--webhook-log-size", "500"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    growth: list[str] = []
    tally = Tally()
    receiver = Receiver(tally)
    samples: list[Sample] = []
    try:
        wait_up(base + "/api/v3/models")
        started = time.monotonic()
        done = threading.Event()

        def sampler() -> None:
            warm_at = args.duration * args.warmup
            while not done.wait(args.sample_s):
                samples.append(sample(server.pid, data_dir, started, url))
                if args.tracemalloc and warm_at and samples[-1].at >= warm_at:
                    snapshot(server, snapshots / "warm.snapshot")
                    warm_at = 0.0

        thread = threading.Thread(target=sampler, daemon=True)
        samples.append(sample(server.pid, data_dir, started, url))
        thread.start()
        asyncio.run(traffic(base, args.clients, args.duration, receiver.url, tally))
        done.set()
        thread.join()
        samples.append(sample(server.pid, data_dir, started, url))
        alive = server.poll() is None
        if args.tracemalloc and alive:
            snapshot(server, snapshots / "end.snapshot")
            growth = heap_growth(
                snapshots / "warm.snapshot", snapshots / "end.snapshot"
            )
    finally:
        stop(server)
        receiver.close()
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(snapshots, ignore_errors=True)
    warm = [s for s in samples if s.at >= args.duration * args.warmup]
    after_warm_up = warm[0] if warm else samples[-1]
    metrics = {}
    for name in ("rss_mb", "fds", "threads", "wal_mb", "data_mb"):
        ys = [float(getattr(s, name)) for s in warm]
        b, half = slope_per_hour([s.at for s in warm], ys)
        metrics[name] = {
            "after_warm_up": getattr(after_warm_up, name),
            "end": getattr(samples[-1], name),
            "peak": max(float(getattr(s, name)) for s in samples),
            "slope_per_hour": round(b, 3),
            "ci95_per_hour": round(half, 3),
            "flat": abs(b) <= half if not math.isnan(half) else None,
        }
    return {
        "profile": profile,
        "store": "postgresql" if url else "sqlite",
        "duration_s": args.duration,
        "samples": len(samples),
        "server_alive_at_end": alive,
        "requests": sum(tally.answers.values()),
        "submitted": tally.submitted,
        "ended": tally.ended,
        "webhooks_received": tally.webhooks,
        "unexpected": tally.unexpected,
        "answers": dict(sorted(tally.answers.items())),
        "rss_end_over_after_warm_up": round(
            samples[-1].rss_mb / after_warm_up.rss_mb, 3
        ),
        "metrics": metrics,
        "heap_growth": growth,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--duration", type=float, default=120.0, help="seconds of traffic"
    )
    parser.add_argument(
        "--profile", default="fast", choices=["fast", "instant", "both"]
    )
    parser.add_argument("--clients", type=int, default=16, help="task clients at once")
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument(
        "--warmup", type=float, default=0.25, help="share of the run before the fit"
    )
    parser.add_argument("--max-predictions", type=int, default=500)
    parser.add_argument("--max-upload-age", type=float, default=120.0, help="seconds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--database",
        help="a PostgreSQL server URL: soak the PostgreSQL mode (a database of its own)",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace the server's Python allocations and print what grew after the "
        "warm-up (slows the server; for finding a leak, not for the figures)",
    )
    args = parser.parse_args()
    profiles = ["fast", "instant"] if args.profile == "both" else [args.profile]
    results = []
    for profile in profiles:
        result = soak(profile, args)
        results.append(result)
        print(f"\n== profile {profile}: {args.duration:g} s, {result['requests']} requests, "
              f"{result['submitted']} tasks ({result['ended']} ended), "
              f"{result['webhooks_received']} webhooks received")  # fmt: skip
        print(f"   server alive at the end: {result['server_alive_at_end']}; "
              f"unexpected answers: {result['unexpected'] or 'none'}")  # fmt: skip
        print(
            f"   RSS at the end / after warm-up: {result['rss_end_over_after_warm_up']:.3f} (target <= 1.10)"
        )
        print(
            f"   {'metric':8} {'warm':>9} {'end':>9} {'peak':>9} {'slope/h':>10} {'±95%':>9} flat"
        )
        for name, m in result["metrics"].items():  # type: ignore[union-attr]
            print(f"   {name:8} {m['after_warm_up']:9.2f} {m['end']:9.2f} {m['peak']:9.2f} "
                  f"{m['slope_per_hour']:10.3f} {m['ci95_per_hour']:9.3f} {m['flat']}")  # fmt: skip
        for line in result["heap_growth"]:  # type: ignore[attr-defined]
            print(f"   {line}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
