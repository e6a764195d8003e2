"""``wavespeed-mock prune``: apply retention to a running server or a data folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..settings import CONTROL_PREFIX, Settings
from .serve import RETENTION_DESTS, add_setting_flags

__all__ = ["add_prune_parser", "run_prune"]


def add_prune_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    prune = subparsers.add_parser(
        "prune",
        help="apply retention now: old predictions, their files, uploads, the cache",
        description="Remove what the retention settings say goes. With --url, a "
        "running server does it (POST /_mock/prune); otherwise it is done on the "
        "data folder, which no server may be using. Flags and WAVESPEED_MOCK_<NAME> "
        "variables set the retention as for serve.",
    )
    where = prune.add_mutually_exclusive_group()
    where.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8000")
    where.add_argument(
        "--data-dir",
        type=Path,
        help="a stopped server's data folder (default ./.wavespeed-mock)",
    )
    add_setting_flags(prune, RETENTION_DESTS)


def run_prune(args: argparse.Namespace) -> int:
    overrides = {
        name: getattr(args, name)
        for name in RETENTION_DESTS
        if name != "prune_interval_s" and getattr(args, name) is not None
    }
    if args.url:
        return _prune_running(args.url, overrides)
    from ..assembly import build_server

    settings = Settings.from_env(data_dir=args.data_dir, **overrides)
    server = build_server(settings.replace(prune_interval_s=0.0))
    try:
        report = server.service.prune()
    finally:
        server.service.close()
    print(json.dumps(report.as_json(), indent=2))
    return 0


def _prune_running(url: str, body: dict[str, object]) -> int:
    import httpx

    try:
        response = httpx.post(
            url.rstrip("/") + CONTROL_PREFIX + "/prune", json=body, timeout=300
        )
    except httpx.HTTPError as exc:
        print(f"wavespeed-mock prune: cannot reach {url}: {exc}", file=sys.stderr)
        return 2
    answer = response.json()
    print(json.dumps(answer.get("data", answer), indent=2))
    return 0 if response.status_code == 200 else 1
