"""Poll latency and memory with 1,000,000 stored predictions against an empty server.

A store's size must not show in what a poll costs. This script fills a data
folder with ``--predictions`` completed predictions directly through
:class:`PredictionStore` (over HTTP the fill would take hours; through the store
it takes minutes), starts ``wavespeed-mock serve`` on it, and polls at one
connection. The baseline, in the same run and on the same machine, is a server
whose data folder holds only the polled predictions (``--polled``, 1,000 by
default). Both servers poll the same kind of prediction (completed, a cached
clip), in the same random order over their polled ids.

The server runs pinned to CPU 0 and the client to CPU 1 (where the machine has
two cores), with the instant profile and retention set to keep everything
(``WAVESPEED_MOCK_MAX_PREDICTIONS=0``, ``WAVESPEED_MOCK_MAX_AGE_S=0``). The client is a plain keep-alive
``http.client`` connection, so each figure is one round trip: request written,
answer read.

    python benchmarks/bench_stored.py [--predictions 1000000] [--polls 20000]
        [--rounds 3] [--keep DIR] [--src TREE]

``--src TREE`` runs the servers of another source tree (``git worktree add
/tmp/before <commit>``), to compare a change with the code before it.

It prints, for each server: start-up time (loading the store), poll p50 and p99
(the median of ``--rounds`` rounds of ``--polls`` polls, and the worst round's
p99), the server's own CPU time per poll (from ``/proc``: on a busy machine the
wall-clock figures also count waiting for a core, this one does not), the ratio
full/empty (target: p99 within 1.5x), and RSS after start and after the polls. Measured figures and what they rest on: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_server import free_port, install_tree, rss_mb, start_mock, stop
from wavespeed_mock.mock_server.core.keys import key_id
from wavespeed_mock.mock_server.core.prediction import Prediction
from wavespeed_mock.mock_server.core.store import PredictionStore

T2V = "character-ai/ovi/text-to-video"
AUTH = "Bearer bench-key"
BATCH = 20_000


def prediction(rng: random.Random, now: float, clip: str) -> Prediction:
    """A completed text-to-video prediction, as a submit under ``instant`` leaves it."""
    seed = rng.randrange(2**31)
    return Prediction(
        id=f"{rng.getrandbits(128):032x}",
        model=T2V,
        input={
            "prompt": f"A cinematic ocean wave at sunrise, take {seed}",
            "seed": seed,
        },
        seed_requested=seed,
        seed=seed,
        created_at=now,
        profile="instant",
        start_at=now,
        done_at=now,
        key_id=key_id("bench-key"),  # stored hashed, as a submit stores it
        render_started_at=now,
        rendered_at=now,
        inference_ms=12,
        nsfw=[False],
        output_file=clip,
    )


def fill(data_dir: Path, total: int, polled: int, seed: int) -> list[str]:
    """Store ``total`` predictions; the ids of ``polled`` of them, spread evenly."""
    rng = random.Random(seed)
    clip = str(data_dir / "cache" / "00" / "clip.mp4")
    store = PredictionStore(data_dir / "state.sqlite3")
    step = max(1, total // polled)
    ids: list[str] = []

    async def run() -> None:
        store.attach(asyncio.get_running_loop())
        now = time.time()
        made = 0
        while made < total:
            batch = [
                prediction(rng, now, clip) for _ in range(min(BATCH, total - made))
            ]
            for offset, p in enumerate(batch):
                if (made + offset) % step == 0 and len(ids) < polled:
                    ids.append(p.id)
            await asyncio.gather(*(store.add(p, charge_micros=150_000) for p in batch))
            made += len(batch)
            if made % 200_000 < BATCH:
                print(f"    stored {made:,}", file=sys.stderr)

    asyncio.run(run())
    store.close()
    return ids


def start(
    data_dir: Path, port: int, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], float]:
    started = time.perf_counter()
    # Keep everything (variables, not flags: a tree without retention ignores
    # them, so --src comparisons still run).
    retention = {"WAVESPEED_MOCK_MAX_PREDICTIONS": "0", "WAVESPEED_MOCK_MAX_AGE_S": "0"}
    server = start_mock(data_dir, port, {**env, **retention})
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/_mock/health")
            if conn.getresponse().status == 200:
                conn.close()
                return server, time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.5)
    server.kill()
    raise RuntimeError("the server did not come up")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def poll_round(
    port: int, ids: list[str], polls: int, rng: random.Random
) -> list[float]:
    """Latencies in ms of ``polls`` result polls over one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": AUTH}
    order = [rng.choice(ids) for _ in range(polls)]
    out: list[float] = []
    for pid in order:
        t0 = time.perf_counter()
        conn.request("GET", f"/api/v3/predictions/{pid}/result", headers=headers)
        response = conn.getresponse()
        body = response.read()
        out.append((time.perf_counter() - t0) * 1000)
        if response.status != 200 or b'"completed"' not in body:
            raise RuntimeError(
                f"poll of {pid} answered {response.status}: {body[:200]!r}"
            )
    conn.close()
    return out


def poll_figures(
    pid: int, port: int, ids: list[str], args: argparse.Namespace
) -> dict[str, float]:
    """Poll p50/p99 over ``args.rounds`` rounds (median; worst p99), the server's
    CPU per poll and its RSS after, for the server ``pid`` on ``port``."""
    rng = random.Random(args.seed)
    poll_round(port, ids, min(2_000, args.polls), rng)  # warm up
    p50s, p99s, cpus = [], [], []
    for _ in range(args.rounds):
        before = cpu_s(pid)
        lat = sorted(poll_round(port, ids, args.polls, rng))
        # The server's own CPU per poll: what the poll costs, whatever else
        # the machine runs (wall-clock latency also counts waiting for a core).
        cpus.append((cpu_s(pid) - before) / args.polls * 1e6)
        p50s.append(lat[len(lat) // 2])
        p99s.append(lat[int(len(lat) * 0.99)])
    return {
        "p50": statistics.median(p50s),
        "p99": statistics.median(p99s),
        "p99_worst": max(p99s),
        "cpu_us": statistics.median(cpus),
        "rss_end": rss_mb(pid),
    }


def report(name: str, result: dict[str, float]) -> None:
    print(
        f"  {name}: start-up {result['startup_s']:.2f} s; poll p50 "
        f"{result['p50']:.3f} ms, p99 {result['p99']:.3f} ms (worst round "
        f"{result['p99_worst']:.3f}); server CPU {result['cpu_us']:.0f} us a poll; "
        f"RSS {result['rss_start']:.0f} MB after start, "
        f"{result['rss_end']:.0f} MB after the polls",
        flush=True,
    )


def measure(
    name: str, data_dir: Path, ids: list[str], args: argparse.Namespace
) -> dict[str, float]:
    port = free_port()
    server, startup_s = start(data_dir, port, args.env)
    try:
        rss_start = rss_mb(server.pid)
        result = {
            "startup_s": startup_s,
            "rss_start": rss_start,
            **poll_figures(server.pid, port, ids, args),
        }
    finally:
        stop(server)
    report(name, result)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--polled", type=int, default=1_000)
    parser.add_argument("--polls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--keep", type=Path, help="keep the filled data folder here (reused if present)"
    )
    parser.add_argument(
        "--src",
        type=Path,
        help="run the server of this source tree (an earlier commit's worktree) "
        "instead of the installed one; the store is filled by the installed one",
    )
    args = parser.parse_args()
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="bench-stored-") as tmp:
        args.env = dict(os.environ)
        if args.src is not None:
            args.env = install_tree(args.src, Path(tmp) / "src")
            print(f"the server runs from {args.src}", flush=True)
        empty_dir = Path(tmp) / "empty"
        full_dir = args.keep or Path(tmp) / "full"
        print(f"filling {args.polled:,} predictions (empty server)", flush=True)
        empty_ids = fill(empty_dir, args.polled, args.polled, args.seed)
        ids_file = full_dir / "polled-ids.txt"
        if ids_file.is_file():
            full_ids = ids_file.read_text().split()
            print(f"reusing the filled store in {full_dir}", flush=True)
        else:
            print(f"filling {args.predictions:,} predictions (full server)", flush=True)
            t0 = time.perf_counter()
            full_ids = fill(full_dir, args.predictions, args.polled, args.seed + 1)
            ids_file.write_text("\n".join(full_ids))
            print(f"  filled in {time.perf_counter() - t0:.0f} s", flush=True)
        size = (full_dir / "state.sqlite3").stat().st_size / 1e6
        print(f"  state.sqlite3: {size:.0f} MB", flush=True)
        print(f"polling at one connection, {args.rounds} x {args.polls:,} polls each")
        empty = measure("empty", empty_dir, empty_ids, args)
        full = measure(f"{args.predictions:,} stored", full_dir, full_ids, args)
    ratio = full["p99"] / empty["p99"]
    verdict = "within" if ratio <= 1.5 else "OVER"
    print(
        f"poll p99 at one connection: {full['p99']:.3f} ms with {args.predictions:,} "
        f"stored vs {empty['p99']:.3f} ms empty = {ratio:.2f}x ({verdict} the 1.5x "
        f"target); p50 {full['p50']:.3f} vs {empty['p50']:.3f} ms; server CPU a "
        f"poll {full['cpu_us']:.0f} vs {empty['cpu_us']:.0f} us; RSS "
        f"{full['rss_end']:.0f} MB vs {empty['rss_end']:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
