"""The GPU check (issue 24): does the real Ovi engine work through the mock's API
on this machine, and how fast. One command, bounded in time.

    python benchmarks/gpu_check.py --checkout ~/Ovi [--variants 720x720_5s]
        [--database postgresql://...] [--skip-tests] [--timeout 540]
    python benchmarks/gpu_check.py --stand-in --database postgresql://...   # a rehearsal

What it needs: a CUDA GPU with ``nvidia-smi``, torch and flash-attn, an Ovi
checkout with the weights of each variant asked for (docs/real-engine.md has
the install); for the worker half a PostgreSQL server (``--database``; a
database of its own is made and dropped; ``.ci/start-postgres`` starts a
throwaway server), else that half is skipped, saying so.

1. The GPU tests, per variant: ``WAVESPEED_MOCK_REQUIRE_GPU=1 pytest
   tests/real_engine -m gpu`` (``--skip-tests`` leaves them out).
2. One clip per variant through ``serve --engine ovi``: a sync-mode submit;
   its wall time, Ovi's own time (the task's ``timings.inference``), the
   overhead around Ovi's call (the difference, HTTP and polling included) and
   the peak GPU memory (``nvidia-smi``, every GPU, sampled every 0.5 s).
3. The same through ``serve --no-render`` and a ``wavespeed-mock worker
   --engine ovi`` on the database (async submit, polled every 0.5 s).

``--stand-in`` runs steps 2 and 3 on the CPU stand-in of the test suite
(``tests/real_engine/fake_ovi.py``) instead of Ovi: a rehearsal of this script
on a machine without a GPU; its times are not figures of the model.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import SERVE, free_port

ROOT = Path(__file__).resolve().parents[1]
T2V = "/api/v3/character-ai/ovi/text-to-video"
AUTH = {"Authorization": "Bearer gpu-check"}
BODY = {
    "prompt": "A woman by the sea says <S>Hello from the mock.<E> <AUDCAP>Waves.<ENDAUDCAP>"
}


class GpuMemory:
    """The peak of every GPU's used memory together, sampled with nvidia-smi."""

    def __init__(self) -> None:
        self.peak_mib: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> GpuMemory:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, check=False,
            ).stdout  # fmt: skip
            used = sum(float(x) for x in out.split() if x.strip())
            self.peak_mib = max(self.peak_mib or 0.0, used)


@contextlib.contextmanager
def started(argv: list[str], env: dict[str, str], log: Path, url: str | None,
            deadline: float) -> Iterator[subprocess.Popen[bytes]]:  # fmt: skip
    """A ``wavespeed-mock`` process, up (its health answers, or for a worker its
    banner is printed) before the deadline; stopped with SIGTERM after."""
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-c", SERVE, *argv], env=env,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{argv[0]} did not start:\n{log.read_text()[-3000:]}"
                )
            if url is None and "taking work" in log.read_text(errors="replace"):
                break
            if url is not None:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(url + "/_mock/health", timeout=2).status_code == 200:
                        break
            time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def one_clip(url: str, deadline: float, sync: bool) -> dict[str, float | str]:
    """Submit one clip; its status, wall seconds and Ovi's own seconds."""
    body = {**BODY, "seed": 42, "enable_sync_mode": sync}
    t0 = time.monotonic()
    with httpx.Client(
        base_url=url, headers=AUTH, timeout=max(1.0, deadline - t0)
    ) as http:
        data = http.post(T2V, json=body).json()["data"]
        while (
            data["status"] not in ("completed", "failed")
            and time.monotonic() < deadline
        ):
            time.sleep(0.5)
            data = http.get(f"/api/v3/predictions/{data['id']}/result").json()["data"]
    wall = time.monotonic() - t0
    inference = float((data.get("timings") or {}).get("inference") or 0) / 1000
    return {"status": data["status"], "wall_s": wall, "ovi_s": inference,
            "overhead_s": wall - inference, "error": data.get("error") or ""}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, help="the Ovi clone (--ovi-checkout)")
    parser.add_argument("--variants", default="720x720_5s")
    parser.add_argument(
        "--database", help="a PostgreSQL server URL, for the worker half"
    )
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument(
        "--stand-in", action="store_true", help="the CPU stand-in, not Ovi"
    )
    parser.add_argument("--timeout", type=float, default=540.0, help="seconds in all")
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    env = dict(os.environ)
    scratch = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    if args.stand_in:
        checkout = scratch / "checkout"
        checkout.mkdir()
        env["WAVESPEED_MOCK_OVI_FACTORY"] = (
            f"{ROOT / 'tests/real_engine/fake_ovi.py'}:FakeOviFusionEngine"
        )
        env.setdefault("WAVESPEED_FAKE_OVI_FRAME", "48x64")
    elif args.checkout is None:
        parser.error("--checkout is needed (or --stand-in for a rehearsal)")
    else:
        checkout = args.checkout.expanduser()
    failed = False
    rows: list[str] = []
    for variant in args.variants.split(","):
        if not args.skip_tests and not args.stand_in:
            print(f"== GPU tests, {variant}", flush=True)
            tests = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "gpu", "tests/real_engine"],
                cwd=ROOT, env={**env, "WAVESPEED_MOCK_REQUIRE_GPU": "1",
                               "WAVESPEED_MOCK_OVI_CHECKOUT": str(checkout),
                               "WAVESPEED_MOCK_OVI_VARIANT": variant},
                timeout=max(1.0, deadline - time.monotonic()), check=False,
            )  # fmt: skip
            failed |= tests.returncode != 0
        engine = [
            "--engine",
            "ovi",
            "--ovi-checkout",
            str(checkout),
            "--ovi-variant",
            variant,
        ]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        print(f"== one clip through serve, {variant}", flush=True)
        with GpuMemory() as memory, started(
            ["serve", "--port", str(port), "--data-dir", str(scratch / f"serve-{variant}"), *engine],
            env, scratch / f"serve-{variant}.log", url, deadline,
        ):  # fmt: skip
            clip = one_clip(url, deadline, sync=True)
        failed |= clip["status"] != "completed"
        rows.append(_row(f"serve {variant}", clip, memory.peak_mib))
        if not args.database:
            rows.append(f"worker {variant}: skipped (no --database)")
            continue
        from bench_postgres import database

        print(
            f"== one clip through serve --no-render and a worker, {variant}", flush=True
        )
        with database(args.database) as db, GpuMemory() as memory:
            data = str(scratch / f"shared-{variant}")
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            with started(
                ["serve", "--port", str(port), "--data-dir", data, "--database", db,
                 "--no-render", "--profile", "engine"], env, scratch / f"api-{variant}.log",
                url, deadline,
            ), started(
                ["worker", "--data-dir", data, "--database", db, "--public-url", url,
                 *engine], env, scratch / f"worker-{variant}.log", None, deadline,
            ):  # fmt: skip
                clip = one_clip(url, deadline, sync=False)
        failed |= clip["status"] != "completed"
        rows.append(_row(f"worker {variant}", clip, memory.peak_mib))
    print(
        "\n".join(
            [
                "",
                "== results"
                + (" (the CPU stand-in: not figures of Ovi)" if args.stand_in else ""),
                *rows,
            ]
        )
    )
    print("logs:", scratch)
    return 1 if failed else 0


def _row(label: str, clip: dict[str, float | str], peak_mib: float | None) -> str:
    peak = (
        f"{peak_mib / 1024:.1f} GiB" if peak_mib is not None else "n/a (no nvidia-smi)"
    )
    line = (
        f"{label}: {clip['status']}, {float(clip['wall_s']):.1f} s a clip, Ovi "
        f"{float(clip['ovi_s']):.1f} s, overhead {float(clip['overhead_s']):.2f} s, "
        f"peak GPU memory {peak}"
    )
    return line + (f" ({clip['error']})" if clip["error"] else "")


if __name__ == "__main__":
    raise SystemExit(main())
