"""Poll latency while clips render cold: a poll must never wait for a render.

What it measures, on this machine: a server on the ``instant`` profile with an
empty clip cache is sent ``--renders`` (default 32) text-to-video submits with
distinct prompts, so that every clip renders cold and at once. Then, while those
renders run:

* **first polls**: one poll per task, all at once (each on its own
  connection), as the SDKs poll right after a submit;
* **steady polls**: one connection polls the tasks round-robin until every one
  is terminal, and each poll's latency is recorded.

It prints p50, p99 and the worst poll of each, how many steady polls answered
``processing`` (the renders were really running), and the time until every task
was terminal. The target (issue 12): steady-poll p99 at most 20 ms.

``--baseline-src PATH`` measures a second source tree in the same run (for
example a worktree of the commit before the change), installed as
``bench_server.py`` does, so both trees see the same machine:

    git worktree add /tmp/baseline a302178
    python benchmarks/bench_cold_polls.py --baseline-src /tmp/baseline

The server is pinned to CPU 0 (its render workers and ffmpeg with it) and the
client to CPU 1 when ``taskset`` is present.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import (  # a script beside this one
    T2V,
    free_port,
    install_tree,
    start_mock,
    stop,
    wait_up,
)

AUTH = {"Authorization": "Bearer bench-key"}
TERMINAL = {"completed", "failed"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_run(base: str, renders: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=renders + 1)
    async with httpx.AsyncClient(
        base_url=base, headers=AUTH, timeout=120, limits=limits
    ) as client:
        tag = time.time_ns()
        submits = await asyncio.gather(
            *(
                client.post(T2V, json={"prompt": f"Cold clip {tag}-{i}", "seed": i})
                for i in range(renders)
            )
        )
        ids = [r.json()["data"]["id"] for r in submits]
    # Fresh connections for the polls: the submits' may have idled past the
    # server's keep-alive while the last ones were answered.
    async with httpx.AsyncClient(
        base_url=base, headers=AUTH, timeout=120, limits=limits
    ) as client:
        started = time.perf_counter()

        async def timed_poll(pid: str) -> tuple[float, str]:
            t0 = time.perf_counter()
            r = await client.get(f"/api/v3/predictions/{pid}/result")
            return (time.perf_counter() - t0) * 1000, r.json()["data"]["status"]

        first = await asyncio.gather(*(timed_poll(pid) for pid in ids))
        steady: list[float] = []
        processing = 0
        pending = list(ids)
        while pending:
            still = []
            for pid in pending:
                ms, status = await timed_poll(pid)
                steady.append(ms)
                if status not in TERMINAL:
                    processing += 1
                    still.append(pid)
            pending = still
        settled_s = time.perf_counter() - started
    first_ms = [ms for ms, _ in first]
    return {
        "first_p50": statistics.median(first_ms),
        "first_p99": pct(first_ms, 0.99),
        "first_max": max(first_ms),
        "steady_p50": statistics.median(steady),
        "steady_p99": pct(steady, 0.99),
        "steady_max": max(steady),
        "steady_polls": len(steady),
        "processing_answers": processing,
        "settled_s": settled_s,
    }


def measure(env: dict[str, str], renders: int, work: Path) -> dict[str, float]:
    data_dir = Path(tempfile.mkdtemp(dir=work))
    port = free_port()
    env = {**env, "WAVESPEED_MOCK_CACHE_DIR": str(data_dir / "cold-cache")}
    server = start_mock(data_dir, port, env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base + "/_mock/health")
        return asyncio.run(one_run(base, renders))
    finally:
        stop(server)


def line(label: str, m: dict[str, float]) -> str:
    return (
        f"{label:<10} first polls p50 {m['first_p50']:8.1f} ms  p99 "
        f"{m['first_p99']:8.1f} ms  max {m['first_max']:8.1f} ms | steady p50 "
        f"{m['steady_p50']:6.2f} ms  p99 {m['steady_p99']:6.2f} ms  max "
        f"{m['steady_max']:7.2f} ms  ({m['steady_polls']:.0f} polls, "
        f"{m['processing_answers']:.0f} processing) | all terminal after "
        f"{m['settled_s']:.1f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=32)
    parser.add_argument("--baseline-src", type=Path)
    args = parser.parse_args()
    if shutil.which("taskset"):
        os.sched_setaffinity(0, {1})
    work = Path(tempfile.mkdtemp(prefix="bench-cold-polls-"))
    try:
        trees = {"this tree": dict(os.environ)}
        if args.baseline_src is not None:
            trees["baseline"] = install_tree(args.baseline_src, work / "baseline")
        results = {
            name: measure(env, args.renders, work) for name, env in trees.items()
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.renders} concurrent cold renders, instant profile, one server each")
    for name, m in results.items():
        print(line(name, m))
    mine = results["this tree"]
    verdict = "met" if mine["steady_p99"] <= 20 else "NOT met"
    print(f"target steady-poll p99 <= 20 ms: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
