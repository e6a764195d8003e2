"""Server throughput and latency: wavespeed-mock against Stoplight Prism, same run.

What it measures, on this machine: submit and poll throughput and p50/p99
latency over loopback at 1, 16 and 64 connections, with wrk as the load
generator, the server pinned to CPU 0 and wrk to CPU 1 (taskset); and the
server's resident memory with 10,000 stored predictions. The baseline, in the
same run, is Stoplight Prism (`prism mock` on contracts/openapi.yaml): stateless,
answering static examples.

Each configuration is measured in ``--repeat`` rounds (default 3) on one
server, and the summary gives the median of the rounds and the worst round's
p99, so that one unlucky 10 s run neither hides nor makes a tail.

Setup (not part of the package): `apt-get install wrk`, and Prism with
`npm install @stoplight/prism-cli` in a folder given as PRISM_DIR (default
/tmp/prism). Without Prism the script still measures the mock.

    python benchmarks/bench_server.py [--duration 10] [--repeat 3]

The mock runs with one worker process, the instant profile, and a cached clip.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
T2V = "/api/v3/character-ai/ovi/text-to-video"
AUTH = "Bearer bench-key"
BODY = json.dumps({"prompt": "A cinematic ocean wave at sunrise", "seed": 7})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wrk(
    url: str, connections: int, duration: int, script: Path | None
) -> dict[str, float]:
    cmd = [
        "taskset",
        "-c",
        "1",
        "wrk",
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{duration}s",
        "--latency",
        "-H",
        f"Authorization: {AUTH}",
    ]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rate,
        "p50": pct("50"),
        "p99": pct("99"),
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
    }


def post_script(folder: Path) -> Path:
    script = folder / "post.lua"
    script.write_text(
        textwrap.dedent(f"""
        wrk.method = "POST"
        wrk.body = '{BODY}'
        wrk.headers["Content-Type"] = "application/json"
    """)
    )
    return script


def start_mock(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "WAVESPEED_MOCK_PROFILE": "instant"}
    return subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            sys.executable,
            "-m",
            "wavespeed_mock.mock_server.cli.main",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_prism(port: int) -> subprocess.Popen[bytes] | None:
    prism = Path(os.environ.get("PRISM_DIR", "/tmp/prism")) / "node_modules/.bin/prism"
    if not prism.exists():
        return None
    spec = ROOT / "contracts" / "openapi.yaml"
    return subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            str(prism),
            "mock",
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            str(spec),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


Runs = dict[str, dict[int, list[dict[str, float]]]]


def measure(
    name: str, base: str, poll_path: str, duration: int, script: Path, repeat: int
) -> Runs:
    """``repeat`` rounds of poll and submit at 1, 16 and 64 connections."""
    results: Runs = {"poll": {}, "submit": {}}
    for round_ in range(1, repeat + 1):
        for connections in (1, 16, 64):
            for kind in ("poll", "submit"):
                if kind == "poll":
                    r = wrk(base + poll_path, connections, duration, None)
                else:
                    r = wrk(base + T2V, connections, duration, script)
                results[kind].setdefault(connections, []).append(r)
                print(
                    f"  {name:<15} round {round_} {kind:<6} c={connections:<3} "
                    f"{r['rps']:>9.0f} req/s  p50 {r['p50']:6.2f} ms  "
                    f"p99 {r['p99']:7.2f} ms  non-2xx {r['non2xx']:.0f}",
                    flush=True,
                )
    return results


def summary(runs: list[dict[str, float]]) -> dict[str, float]:
    """Medians over the rounds, and the worst round's p99."""
    return {
        "rps": statistics.median(r["rps"] for r in runs),
        "p99": statistics.median(r["p99"] for r in runs),
        "worst_p99": max(r["p99"] for r in runs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 10 s per run: with shorter runs the first requests on 64 fresh connections
    # (connection set-up, a cold loop) dominate the p99.
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds per configuration (medians)"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        script = post_script(folder)
        port = free_port()
        server = start_mock(folder / "data", port)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_up(base + "/_mock/health")
            # Warm the clip cache and make one completed prediction to poll.
            first = httpx.post(
                base + T2V,
                content=BODY,
                headers={"Authorization": AUTH, "Content-Type": "application/json"},
                timeout=60,
            ).json()["data"]["id"]
            status = httpx.get(
                f"{base}/api/v3/predictions/{first}/result",
                headers={"Authorization": AUTH},
                timeout=60,
            ).json()["data"]["status"]
            assert status == "completed", status
            print("wavespeed-mock (1 process, instant profile, cached clip):")
            mock = measure(
                "wavespeed-mock",
                base,
                f"/api/v3/predictions/{first}/result",
                args.duration,
                script,
                args.repeat,
            )
        finally:
            server.terminate()
            server.wait(10)

        # Memory on a fresh server holding exactly 10,000 predictions.
        port = free_port()
        server = start_mock(folder / "memory", port)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_up(base + "/_mock/health")
            with httpx.Client(
                headers={"Authorization": AUTH, "Content-Type": "application/json"}
            ) as c:
                for _ in range(10_000):
                    c.post(base + T2V, content=BODY, timeout=60)
            time.sleep(1.0)
            count = int(httpx.get(base + "/_mock/state").json()["data"]["predictions"])
            memory = rss_mb(server.pid)
            print(f"  memory: {memory:.0f} MB RSS with {count:,} stored predictions")
        finally:
            server.terminate()
            server.wait(10)

        prism_port = free_port()
        prism = start_prism(prism_port)
        baseline = None
        if prism is None:
            print("Prism not found (set PRISM_DIR); no baseline this run.")
        else:
            try:
                pbase = f"http://127.0.0.1:{prism_port}"
                wait_up(pbase + "/api/v3/balance", 120)
                print("Stoplight Prism (prism mock contracts/openapi.yaml):")
                baseline = measure(
                    "prism",
                    pbase,
                    "/api/v3/predictions/0123456789abcdef0123456789abcdef/result",
                    args.duration,
                    script,
                    args.repeat,
                )
            finally:
                prism.terminate()
                prism.wait(10)

    print(
        f"\nsummary, median of {args.repeat} rounds (targets: polls >= 1.0x Prism, "
        "submits >= 2,000/s, p99 <= 10 ms at 16 and <= 40 ms at 64, <= 150 MB):"
    )
    for kind in ("poll", "submit"):
        for c in (1, 16, 64):
            m = summary(mock[kind][c])
            line = (
                f"  {kind:<6} c={c:<3} mock {m['rps']:>7.0f}/s p99 {m['p99']:6.2f} ms"
                f" (worst {m['worst_p99']:6.2f})"
            )
            if baseline:
                b = summary(baseline[kind][c])
                line += (
                    f"  | prism {b['rps']:>7.0f}/s p99 {b['p99']:7.2f} ms"
                    f"  | ratio {m['rps'] / b['rps']:.2f}x"
                )
            print(line)
    print(f"  memory {memory:.0f} MB RSS with {count:,} predictions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
