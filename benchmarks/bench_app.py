"""The app's own cost per request: CPU time of a poll and a submit, no sockets.

The app built by ``create_app`` is called directly as ASGI (every middleware,
the router, the handler, the store), so the figure is the server's own work
without uvicorn, the kernel or the load generator, and counts CPU time, which
a busy machine does not distort much. A poll reads one completed prediction; a
submit sends one body again and again (a cache hit, as test suites do).

    python benchmarks/bench_app.py [--requests 20000] [--pairs 3] [--baseline-src PATH]

``--baseline-src`` measures another source tree of the project in the same run
(``git worktree add /tmp/baseline <commit>``), installed as bench_server.py does,
and prints this tree's cost against it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import install_tree

T2V = "/api/v3/character-ai/ovi/text-to-video"
BODY = json.dumps({"prompt": "A cinematic ocean wave at sunrise", "seed": 7}).encode()
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"authorization", b"Bearer bench-key"),
    (b"content-type", b"application/json"),
]


async def measure(requests: int, rounds: int) -> dict[str, float]:
    """Best-of-``rounds`` CPU microseconds per poll and per submit."""
    from wavespeed_mock.mock_server import Settings
    from wavespeed_mock.mock_server.http.app import create_app

    data = Path(tempfile.mkdtemp(prefix="bench-app-"))
    app = create_app(Settings(data_dir=data, profile="instant"))
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    lifespan = asyncio.ensure_future(
        app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
            inbox.get,
            outbox.put,
        )
    )
    await outbox.get()

    async def call(method: str, path: str, body: bytes = b"") -> bytes:
        sent: list[dict[str, Any]] = []
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # never disconnects
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path,
            "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": HEADERS, "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip
        await app(scope, receive, send)
        return bytes(sent[-1].get("body", b""))

    pid = json.loads(await call("POST", T2V, BODY))["data"]["id"]
    poll = f"/api/v3/predictions/{pid}/result"
    for _ in range(600):  # a poll never waits for the render
        if json.loads(await call("GET", poll))["data"]["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    figures = {}
    for kind, args in (("poll", ("GET", poll)), ("submit", ("POST", T2V, BODY))):
        for _ in range(500):
            await call(*args)
        best = float("inf")
        per_round = max(1, requests // rounds)
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(per_round):
                await call(*args)
            best = min(best, (time.process_time() - started) / per_round * 1e6)
        figures[kind] = best
    await inbox.put({"type": "lifespan.shutdown"})
    await outbox.get()
    await lifespan
    return figures


def run_in(env: dict[str, str] | None, requests: int, rounds: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", "--requests", str(requests),
         "--rounds", str(rounds)],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path)
    parser.add_argument(
        "--pairs", type=int, default=3, help="turns each tree takes (default 3)"
    )
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(asyncio.run(measure(args.requests, args.rounds))))
        return 0
    trees: dict[str, dict[str, str] | None] = {"this tree": None}
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline_src:
            trees["baseline"] = install_tree(
                args.baseline_src.resolve(), Path(tmp) / "site"
            )
        # The trees take turns, --pairs times, so a change in the machine's
        # speed during the run falls on both; each tree's best round counts.
        results: dict[str, dict[str, float]] = {}
        for _ in range(args.pairs):
            for name, env in trees.items():
                figures = run_in(env, args.requests, args.rounds)
                best = results.setdefault(name, figures)
                for kind, value in figures.items():
                    best[kind] = min(best[kind], value)
    print(
        f"CPU per request in the app, best of {args.pairs} x {args.rounds} rounds"
        f" of {args.requests // args.rounds}, the trees taking turns:"
    )
    for kind in ("poll", "submit"):
        line = f"  {kind:<6} this tree {results['this tree'][kind]:7.1f} us"
        if "baseline" in results:
            base = results["baseline"][kind]
            line += f"  | baseline {base:7.1f} us  | this/baseline {results['this tree'][kind] / base:.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
