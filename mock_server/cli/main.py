"""The ``wavespeed-mock`` command: serve, worker, render, control, check, prune."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ...contracts.errors import WavespeedMockError
from .serve import add_serve_parser, run_serve

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wavespeed-mock",
        description="A local mock of the WaveSpeedAI Ovi API.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_parser(subparsers)
    from .worker import add_worker_parser

    add_worker_parser(subparsers)
    from .render import add_render_parser

    add_render_parser(subparsers)
    from ...plugins.check import add_check_parser
    from .control import add_control_parser

    add_check_parser(subparsers)
    add_control_parser(subparsers)
    from .prune import add_prune_parser

    add_prune_parser(subparsers)
    from .catalogue import add_catalogue_parser

    add_catalogue_parser(subparsers)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wavespeed-mock")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    A closed output pipe (``wavespeed-mock control journal | head``) ends the
    command quietly with status 141, as a Unix tool killed by SIGPIPE would.
    """
    try:
        return _main(argv)
    except BrokenPipeError:
        # Python's documented recipe: point stdout at devnull so the flush at
        # exit does not raise a second time.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE_STATUS


BROKEN_PIPE_STATUS = 128 + 13  # 128 + SIGPIPE


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "serve":
            return run_serve(args)
        if args.command == "render":
            from .render import run_render

            return int(run_render(args))
        if args.command == "control":
            from .control import run_control

            return run_control(args)
        if args.command == "prune":
            from .prune import run_prune

            return run_prune(args)
        if args.command == "worker":
            from .worker import run_worker

            return run_worker(args)
        if args.command == "catalogue":
            from .catalogue import run_catalogue

            return run_catalogue(args)
        if args.command == "check":
            from ...plugins.check import run_check

            return int(run_check(args))
    except WavespeedMockError as exc:
        print(f"wavespeed-mock: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")  # exits


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
