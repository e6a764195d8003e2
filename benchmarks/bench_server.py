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
/tmp/prism). Prism runs with `-v error`, as its authors advise for speed: at its
default level it logs every request. Without Prism the script still measures
the mock.

    python benchmarks/bench_server.py [--duration 10] [--repeat 3]
        [--baseline-src PATH]

The mock runs with one worker process, the instant profile, and a cached clip.
"This tree" is the wavespeed_mock the running interpreter imports (the
project's editable install: the working tree).

``--baseline-src PATH`` also measures a second source tree of the project, to
compare a change with the code before it, for example a worktree of an earlier
commit:

    git worktree add /tmp/baseline bb09860
    python benchmarks/bench_server.py --baseline-src /tmp/baseline

The tree is installed (``pip install --no-deps --target``, a copy; an editable
install would be found through this environment's own finder) into a scratch
folder that is deleted at the end; its dependencies come from this environment,
and its server runs with that folder first on PYTHONPATH. Both servers run side
by side and every round measures each of them in turn, so they see the same
machine; the summary gives both trees and this tree's ratio to the baseline,
and the memory figure for each.
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
from dataclasses import dataclass
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


# The CLI's entry point, which every version of the tree has (cli.py or cli/).
SERVE = "from wavespeed_mock.mock_server.cli import main; raise SystemExit(main())"


def install_tree(src: Path, target: Path) -> dict[str, str]:
    """Install the source tree ``src`` into ``target``; the environment to run it."""
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--target", str(target), str(src)],
        capture_output=True, text=True,
    )  # fmt: skip
    if pip.returncode != 0:
        # The build backend's warnings are noise unless the install failed.
        raise RuntimeError(f"could not install {src}:\n{pip.stdout}{pip.stderr}")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(target), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    where = package_file(env)
    if not Path(where).is_relative_to(target):
        raise RuntimeError(f"the baseline imports {where}, not the copy in {target}")
    return env


def package_file(env: dict[str, str]) -> str:
    """Where ``wavespeed_mock.mock_server`` comes from in this environment."""
    return subprocess.run(
        [sys.executable, "-c",
         "import pathlib, wavespeed_mock.mock_server as m; "
         "print(pathlib.Path(m.__file__).resolve())"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def start_mock(
    data_dir: Path, port: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            sys.executable,
            "-c",
            SERVE,
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        # Retention off the polled prediction: three rounds of submits store ~100,000.
        env={
            **env,
            "WAVESPEED_MOCK_PROFILE": "instant",
            "WAVESPEED_MOCK_MAX_PREDICTIONS": "1000000",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


BARE = """
import sys, uvicorn
from wavespeed_mock.mock_server.http.live import UVICORN_OPTIONS
poll, submit = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
HEAD = [(b"content-type", b"application/json")]

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["method"] == "POST":
        while (await receive()).get("more_body"):
            pass
    body = submit if scope["method"] == "POST" else poll
    await send({"type": "http.response.start", "status": 200,
                "headers": HEAD + [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

options = {**UVICORN_OPTIONS, "lifespan": "off"}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), **options)
"""
"""A bare ASGI app under the mock's uvicorn options, answering the mock's own poll
and submit bytes: the stack's limit on this machine, which no app on it can beat."""


def start_bare(
    port: int, poll: bytes, submit: bytes, folder: Path
) -> subprocess.Popen[bytes]:
    (folder / "bare-poll").write_bytes(poll)
    (folder / "bare-submit").write_bytes(submit)
    return subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-c", BARE, str(port),
         str(folder / "bare-poll"), str(folder / "bare-submit")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


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
            # Prism's advice for speed: logging each request is its bottleneck.
            "-v",
            "error",
            str(spec),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(10)


@dataclass
class Target:
    """A server under test: its label, base URL and a path to poll."""

    name: str
    base: str
    poll_path: str


Runs = dict[str, dict[int, list[dict[str, float]]]]


def measure(
    targets: list[Target], duration: int, script: Path, repeat: int
) -> dict[str, Runs]:
    """``repeat`` rounds of poll and submit at 1, 16 and 64 connections.

    Each round measures every target in turn, so that a slow spell of the
    machine falls on all of them rather than on one.
    """
    results: dict[str, Runs] = {t.name: {"poll": {}, "submit": {}} for t in targets}
    for round_ in range(1, repeat + 1):
        for target in targets:
            for connections in (1, 16, 64):
                for kind in ("poll", "submit"):
                    if kind == "poll":
                        url = target.base + target.poll_path
                        r = wrk(url, connections, duration, None)
                    else:
                        r = wrk(target.base + T2V, connections, duration, script)
                    results[target.name][kind].setdefault(connections, []).append(r)
                    print(
                        f"  {target.name:<15} round {round_} {kind:<6} "
                        f"c={connections:<3} {r['rps']:>9.0f} req/s  "
                        f"p50 {r['p50']:6.2f} ms  p99 {r['p99']:7.2f} ms  "
                        f"non-2xx {r['non2xx']:.0f}",
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


def warm_up(base: str) -> str:
    """Warm the clip cache and make one completed prediction to poll; its id."""
    first = httpx.post(
        base + T2V,
        content=BODY,
        headers={"Authorization": AUTH, "Content-Type": "application/json"},
        timeout=60,
    ).json()["data"]["id"]
    deadline = time.monotonic() + 120  # a poll never waits for the render
    status = "created"
    while status not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        status = httpx.get(
            f"{base}/api/v3/predictions/{first}/result",
            headers={"Authorization": AUTH},
            timeout=60,
        ).json()["data"]["status"]
    assert status == "completed", status
    return str(first)


def memory_with_10k(data_dir: Path, env: dict[str, str]) -> tuple[float, int]:
    """RSS of a fresh server holding exactly 10,000 predictions, and the count."""
    port = free_port()
    server = start_mock(data_dir, port, env)
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
        return rss_mb(server.pid), count
    finally:
        stop(server)


def figures(m: dict[str, float], label: str) -> str:
    return (
        f"{label} {m['rps']:>7.0f}/s p99 {m['p99']:6.2f} ms"
        f" (worst {m['worst_p99']:6.2f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 10 s per run: with shorter runs the first requests on 64 fresh connections
    # (connection set-up, a cold loop) dominate the p99.
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds per configuration (medians)"
    )
    parser.add_argument(
        "--baseline-src",
        type=Path,
        metavar="PATH",
        help="another source tree of the project (a git worktree), measured too",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="PATH",
        help="where the servers keep their data (default: a temporary folder on "
        "the disk); /dev/shm takes the disk's own latency out of the figures",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    if args.baseline_src and not (args.baseline_src / "pyproject.toml").is_file():
        print(
            f"--baseline-src {str(args.baseline_src)!r} has no pyproject.toml; "
            "give the root of a source tree of this project "
            "(git worktree add /tmp/baseline <commit>).",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(dir=args.data_dir) as tmp:
        folder = Path(tmp)
        script = post_script(folder)
        trees = {"wavespeed-mock": dict(os.environ)}
        if args.baseline_src:
            trees["baseline"] = install_tree(
                args.baseline_src.resolve(), folder / "baseline-site"
            )
        for name, env in trees.items():
            print(f"{name}: {package_file(env)}")

        servers: list[subprocess.Popen[bytes]] = []
        targets: list[Target] = []
        try:
            for name, env in trees.items():
                port = free_port()
                servers.append(start_mock(folder / f"data-{name}", port, env))
                base = f"http://127.0.0.1:{port}"
                wait_up(base + "/_mock/health")
                first = warm_up(base)
                targets.append(
                    Target(name, base, f"/api/v3/predictions/{first}/result")
                )
            mock_base = targets[0].base
            poll_bytes = httpx.get(
                mock_base + targets[0].poll_path, headers={"Authorization": AUTH}
            ).content
            submit_bytes = httpx.post(
                mock_base + T2V,
                content=BODY,
                headers={"Authorization": AUTH, "Content-Type": "application/json"},
            ).content
            bare_port = free_port()
            servers.append(start_bare(bare_port, poll_bytes, submit_bytes, folder))
            bare_base = f"http://127.0.0.1:{bare_port}"
            wait_up(bare_base + "/")
            targets.append(Target("bare-asgi", bare_base, targets[0].poll_path))
            prism_port = free_port()
            prism = start_prism(prism_port)
            if prism is None:
                print("Prism not found (set PRISM_DIR); no Prism this run.")
            else:
                servers.append(prism)
                pbase = f"http://127.0.0.1:{prism_port}"
                wait_up(pbase + "/api/v3/balance", 120)
                targets.append(
                    Target(
                        "prism",
                        pbase,
                        "/api/v3/predictions/0123456789abcdef0123456789abcdef/result",
                    )
                )
            print(
                "wavespeed-mock (1 process, instant profile, cached clip)"
                + (", baseline tree" if args.baseline_src else "")
                + (", Stoplight Prism (prism mock -v error)" if prism else "")
                + ":"
            )
            results = measure(targets, args.duration, script, args.repeat)
        finally:
            for server in servers:
                stop(server)

        # Memory on a fresh server holding exactly 10,000 predictions.
        memory = {
            name: memory_with_10k(folder / f"memory-{name}", env)
            for name, env in trees.items()
        }
        for name, (mb, count) in memory.items():
            print(f"  memory {name}: {mb:.0f} MB RSS with {count:,} stored predictions")

    print(
        f"\nsummary, median of {args.repeat} rounds (issue 20's targets at 16 "
        "connections: polls >= 4x Prism and >= 0.5x the bare app, submits >= 3x "
        "Prism, p99 <= 5 ms polls and <= 8 ms submits):"
    )
    mock = results["wavespeed-mock"]
    baseline = results.get("baseline")
    prism_runs = results.get("prism")
    bare_runs = results.get("bare-asgi")
    for kind in ("submit", "poll"):
        for c in (1, 16, 64):
            m = summary(mock[kind][c])
            line = f"  {kind:<6} c={c:<3} " + figures(m, "this tree")
            if baseline:
                b = summary(baseline[kind][c])
                line += "  | " + figures(b, "baseline")
                line += f"  | ratio {m['rps'] / b['rps']:.2f}x"
            if prism_runs:
                b = summary(prism_runs[kind][c])
                line += (
                    f"  | prism {b['rps']:>7.0f}/s p99 {b['p99']:7.2f} ms"
                    f"  | vs prism {m['rps'] / b['rps']:.2f}x"
                )
            if bare_runs:
                b = summary(bare_runs[kind][c])
                line += f"  | bare ASGI {b['rps']:>7.0f}/s  | vs bare {m['rps'] / b['rps']:.2f}x"
            print(line)
    line = "  memory this tree {:.0f} MB RSS with {:,} predictions".format(
        *memory["wavespeed-mock"]
    )
    if "baseline" in memory:
        line += " | baseline {:.0f} MB with {:,}".format(*memory["baseline"])
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
