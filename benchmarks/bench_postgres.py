"""The PostgreSQL mode's figures (issue 23), each against a baseline of the same run.

Needs a PostgreSQL server (``.ci/start-postgres`` starts a throwaway one; its URL
is the argument) and ``wrk``. Each server gets a database of its own, created
and dropped here.

1. **A store of 1,000,000**: start-up time and RSS of a PostgreSQL-mode server
   whose database holds ``--predictions`` completed predictions (filled with
   ``COPY``, minutes over HTTP otherwise), and its poll p50/p99 at one
   connection against a server whose database holds only the polled ones
   (``bench_stored.py``'s client: one keep-alive connection, random ids).
2. **Polls at 16 connections** (``wrk``, one completed prediction): a
   PostgreSQL-mode process against today's SQLite mode, the same poll.
3. **Two processes on one database** against one: the same wrk load, split over
   two servers (one ``wrk`` each, half the connections each) against all of it
   on one server.
4. **``serve --workers 2``** against ``--workers 1``: one port, one ``wrk`` at 16
   connections, the kernel spreading them over the workers.

    python benchmarks/bench_postgres.py postgresql://postgres@127.0.0.1:54329/postgres
        [--predictions 1000000] [--polls 20000] [--rounds 3] [--duration 8]
        [--steps 1,2,3,4]

The servers are not pinned: the PostgreSQL server needs a core too. Figures:
docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
from bench_server import SERVE, free_port, rss_mb, stop, wrk
from bench_stored import fill, poll_figures, prediction, report
from wavespeed_mock.mock_server.core.pg_store import PostgresStore
from wavespeed_mock.mock_server.core.prediction import MUTABLE_FIELDS
from wavespeed_mock.mock_server.core.store import prediction_record


@contextmanager
def database(server_url: str) -> Iterator[str]:
    """A new database on ``server_url`` for one server; dropped afterwards."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fill_pg(url: str, total: int, polled: int, seed: int) -> list[str]:
    """Store ``total`` completed predictions with ``COPY``; the ids of ``polled``."""
    import psycopg

    PostgresStore(url).close()  # the schema, as a server makes it
    rng = random.Random(seed)
    now = time.time()
    step = max(1, total // polled)
    ids: list[str] = []
    columns = ", ".join(MUTABLE_FIELDS)
    with psycopg.connect(url) as db, db.cursor() as cur:
        with cur.copy(
            "COPY predictions (id, key_id, charge_micros, image_digest, record, "
            f"{columns}) FROM STDIN"
        ) as copy:
            for n in range(total):
                p = prediction(rng, now, "/nonexistent/clip.mp4")
                if n % step == 0 and len(ids) < polled:
                    ids.append(p.id)
                values = [getattr(p, name) for name in MUTABLE_FIELDS]
                values[MUTABLE_FIELDS.index("nsfw")] = "[false]"
                copy.write_row(
                    (p.id, p.key_id, 150_000, None, prediction_record(p), *values)
                )
                if n and n % 200_000 == 0:
                    print(f"    stored {n:,}", file=sys.stderr, flush=True)
        db.commit()
    # What autovacuum does soon after a bulk load (sets hint bits, statistics):
    # without it the first server's start pays for it.
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("VACUUM ANALYZE predictions")
    return ids


def serve(
    data_dir: Path, url: str | None, *options: str
) -> tuple[subprocess.Popen[bytes], int, float]:
    """A server on its own port, not pinned (unlike bench_server.py's: the
    PostgreSQL server and a second mock process need the other core); the
    seconds until it answered."""
    env = {
        **os.environ,
        "WAVESPEED_MOCK_PROFILE": "instant",
        "WAVESPEED_MOCK_MAX_PREDICTIONS": "0",  # keep everything
        "WAVESPEED_MOCK_MAX_AGE_S": "0",
    }
    if url:
        env["WAVESPEED_MOCK_DATABASE"] = url
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", "--port", str(port),
         "--data-dir", str(data_dir), *options],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 1800
    while True:  # polled every 20 ms: start-up is a figure here
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/_mock/health", timeout=2)
            return server, port, time.perf_counter() - started
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def one_connection(
    name: str, data_dir: Path, url: str | None, ids: list[str], args: argparse.Namespace
) -> dict[str, float]:
    server, port, startup_s = serve(data_dir, url)
    every_cpu = os.sched_getaffinity(0)
    try:
        # The client on CPU 1 (as wrk is), pinned only now: a server started
        # from a pinned process would inherit the pin.
        if len(every_cpu) > 1:
            os.sched_setaffinity(0, {1})
        result = {
            "startup_s": startup_s,
            "rss_start": rss_mb(server.pid),
            **poll_figures(server.pid, port, ids, args),
        }
    finally:
        os.sched_setaffinity(0, every_cpu)
        stop(server)
    report(name, result)
    return result


def wrk_polls(
    ports: list[int], ids: list[str], connections: int, duration: int
) -> float:
    """Polls/s of one wrk per server, ``connections`` split between them."""
    each = connections // len(ports)
    with ThreadPoolExecutor(len(ports)) as pool:
        runs = list(
            pool.map(
                lambda port: wrk(
                    f"http://127.0.0.1:{port}/api/v3/predictions/{ids[0]}/result",
                    each,
                    duration,
                    None,
                ),
                ports,
            )
        )
    if any(r["non2xx"] for r in runs):
        raise RuntimeError(f"non-2xx answers: {runs}")
    return sum(r["rps"] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "server", help="a PostgreSQL server URL (its databases are made here)"
    )
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--polled", type=int, default=1_000)
    parser.add_argument("--polls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk round")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--steps", default="1,2,3,4", help="which of the figures to measure (1-4)"
    )
    args = parser.parse_args()
    steps = {int(step) for step in args.steps.split(",")}
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp:
        root = Path(tmp)
        with database(args.server) as empty_url, database(args.server) as full_url:
            empty_ids = fill_pg(empty_url, args.polled, args.polled, args.seed)
            if 1 in steps:
                one_million(args, root, empty_url, empty_ids, full_url)
            if 2 in steps:
                sqlite_against_postgres(args, root, empty_url, empty_ids)
            if 3 in steps:
                two_servers(args, root, empty_url, empty_ids)
            if 4 in steps:
                two_workers(args, root, empty_url, empty_ids)
    return 0


def one_million(
    args: argparse.Namespace,
    root: Path,
    empty_url: str,
    empty_ids: list[str],
    full_url: str,
) -> None:
    print(f"1. {args.predictions:,} stored against the polled {args.polled:,}")
    t0 = time.perf_counter()
    full_ids = fill_pg(full_url, args.predictions, args.polled, args.seed + 1)
    print(f"  filled in {time.perf_counter() - t0:.0f} s", flush=True)
    empty = one_connection("empty", root / "empty", empty_url, empty_ids, args)
    full = one_connection(
        f"{args.predictions:,} stored", root / "full", full_url, full_ids, args
    )
    print(
        f"  => start-up {full['startup_s']:.2f} s (target 2 s), RSS "
        f"{full['rss_end']:.0f} MB (target 150), poll p99 "
        f"{full['p99'] / empty['p99']:.2f}x empty (target 1.5x)"
    )


def taking_turns(
    args: argparse.Namespace, *loads: tuple[list[int], list[str]]
) -> list[float]:
    """The median polls/s of each load (its ports, the ids it polls) at 16
    connections, the loads taking turns round by round so they see the same
    machine."""
    rates: list[list[float]] = [[] for _ in loads]
    for _ in range(args.rounds):
        for rate, (ports, ids) in zip(rates, loads, strict=True):
            rate.append(wrk_polls(ports, ids, 16, args.duration))
    return [statistics.median(rate) for rate in rates]


def sqlite_against_postgres(
    args: argparse.Namespace, root: Path, url: str, ids: list[str]
) -> None:
    print(f"2. polls at 16 connections, {args.rounds} rounds of {args.duration} s")
    sqlite_ids = fill(root / "sqlite", 1, 1, args.seed)
    lite, lite_port, _ = serve(root / "sqlite", None)
    pg, pg_port, _ = serve(root / "pg", url)
    try:
        lite_rate, pg_rate = taking_turns(
            args, ([lite_port], sqlite_ids), ([pg_port], ids)
        )
    finally:
        stop(lite)
        stop(pg)
    print(
        f"  SQLite mode {lite_rate:,.0f}/s, PostgreSQL mode {pg_rate:,.0f}/s "
        f"=> {pg_rate / lite_rate:.2f}x (target 0.7x)"
    )


def two_servers(args: argparse.Namespace, root: Path, url: str, ids: list[str]) -> None:
    print("3. two processes on one database against one, 16 connections")
    first, first_port, _ = serve(root / "pg1", url)
    second, second_port, _ = serve(root / "pg2", url)
    try:
        one, two = taking_turns(
            args, ([first_port], ids), ([first_port, second_port], ids)
        )
    finally:
        stop(first)
        stop(second)
    print(
        f"  one process {one:,.0f}/s, two {two:,.0f}/s => {two / one:.2f}x "
        f"(target 1.6x; this machine has {os.cpu_count()} cores for the "
        "servers, PostgreSQL and wrk together)"
    )


def two_workers(args: argparse.Namespace, root: Path, url: str, ids: list[str]) -> None:
    print("4. serve --workers 2 against --workers 1 on one database, 16 connections")
    one, one_port, _ = serve(root / "w1", url, "--workers", "1")
    two, two_port, _ = serve(root / "w2", url, "--workers", "2")
    try:
        rate_one, rate_two = taking_turns(args, ([one_port], ids), ([two_port], ids))
    finally:
        stop(one)
        stop(two)
    print(
        f"  --workers 1 {rate_one:,.0f}/s, --workers 2 {rate_two:,.0f}/s => "
        f"{rate_two / rate_one:.2f}x (target 1.6x; {os.cpu_count()} cores for the "
        "workers, PostgreSQL and wrk together)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
