"""The ``wavespeed-mock`` command: serve, render, check."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ...contracts.errors import WavespeedMockError
from ..settings import Settings

__all__ = ["build_parser", "main"]


def _add_serve_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the mock API server",
        description="Run the mock WaveSpeedAI API. Every flag also reads a "
        "WAVESPEED_MOCK_<NAME> environment variable (flags win).",
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument(
        "--data-dir",
        type=Path,
        help="state, clips and uploads (default ./.wavespeed-mock)",
    )
    serve.add_argument(
        "--public-url",
        help="base of the URLs handed out (behind a proxy or in a container)",
    )
    serve.add_argument(
        "--profile", help="timing: instant, fast (default), realistic, polls:N, engine"
    )
    serve.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accept only this key (repeatable); default accepts any non-empty key",
    )
    serve.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="reject unknown body fields and data: URIs",
    )
    serve.add_argument(
        "--engine", help="synthetic (default), ovi, or a registered third-party engine"
    )
    serve.add_argument(
        "--fetch-remote-images",
        action="store_true",
        default=None,
        help="fetch http(s) image URLs (bounded); off by default (placeholder frame)",
    )
    serve.add_argument(
        "--virtual-clock",
        action="store_true",
        default=None,
        help="start with a frozen clock that only POST /_mock/clock moves",
    )
    serve.add_argument(
        "--sync-wait",
        type=float,
        dest="sync_wait_s",
        help="seconds a sync-mode submit waits before the 5004 answer (default 90)",
    )
    ovi = serve.add_argument_group("ovi engine")
    ovi.add_argument(
        "--ovi-checkout", type=Path, help="path of a character-ai/Ovi checkout"
    )
    ovi.add_argument(
        "--ovi-checkpoints", type=Path, help="folder of Ovi's checkpoints (ckpt_dir)"
    )
    ovi.add_argument("--ovi-variant", help="model variant (default 720x720_5s)")
    ovi.add_argument("--ovi-device", type=int, help="CUDA device index (default 0)")
    ovi.add_argument(
        "--ovi-cpu-offload", action="store_true", default=None, help="Ovi's CPU offload"
    )
    ovi.add_argument(
        "--ovi-fp8", action="store_true", default=None, help="Ovi's fp8 weights"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wavespeed-mock",
        description="A local mock of the WaveSpeedAI Ovi API.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve_parser(subparsers)
    from .render import add_render_parser

    add_render_parser(subparsers)
    from ...plugins.check import add_check_parser
    from .control import add_control_parser

    add_check_parser(subparsers)
    add_control_parser(subparsers)
    return parser


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..http.app import create_app
    from ..http.live import UVICORN_OPTIONS

    keys = {
        name: getattr(args, name)
        for name in (
            "host",
            "port",
            "data_dir",
            "public_url",
            "profile",
            "strict",
            "engine",
            "fetch_remote_images",
            "virtual_clock",
            "sync_wait_s",
            "ovi_checkout",
            "ovi_checkpoints",
            "ovi_variant",
            "ovi_device",
            "ovi_cpu_offload",
            "ovi_fp8",
        )
    }
    if args.api_keys:
        keys["api_keys"] = tuple(args.api_keys)
    settings = Settings.from_env(**keys)
    if (
        settings.engine == "ovi"
        and args.profile is None
        and "WAVESPEED_MOCK_PROFILE" not in os.environ
    ):
        settings = settings.replace(
            profile="engine"
        )  # the real engine implies real progress
    app = create_app(settings)
    _freeze_long_lived_objects()
    print(
        f"wavespeed-mock serving the WaveSpeedAI API at {settings.base_url} "
        f"(engine {settings.engine}, profile {settings.profile}, data in {settings.data_dir})",
        file=sys.stderr,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, **UVICORN_OPTIONS)
    return 0


def _freeze_long_lived_objects(every_s: float = 1.0) -> None:
    """Keep the cyclic garbage collector off the stored predictions.

    Predictions live for the server's whole life, but each full collection walks
    all of them: with 60,000 stored, those passes put a p99 of 211 ms on submits
    at 64 connections (44 ms with this; benchmarks/bench_server.py). Freezing
    moves what exists to the permanent generation every second; only the server
    process does it, never a test process that embeds the server.
    """
    import gc
    import threading
    import time

    def freeze() -> None:
        while True:
            time.sleep(every_s)
            gc.freeze()

    threading.Thread(target=freeze, name="gc-freeze", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "render":
            from .render import run_render

            return int(run_render(args))
        if args.command == "control":
            from .control import run_control

            return run_control(args)
        if args.command == "check":
            from ...plugins.check import run_check

            return int(run_check(args))
    except WavespeedMockError as exc:
        print(f"wavespeed-mock: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")  # exits


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
