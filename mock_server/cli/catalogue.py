"""``wavespeed-mock catalogue``: list, show and pull model catalogues.

``list`` and ``show`` read the built-in catalogue and any ``--catalogue FILE``;
``pull`` saves a server's ``GET /api/v3/models`` answer (the live API's by
default) as a catalogue file that ``--catalogue`` takes as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ...contracts import Catalogue, CatalogueError, ModelSpec

__all__ = ["add_catalogue_parser", "run_catalogue"]

LIVE_BASE_URL = "https://api.wavespeed.ai"
PULL_TIMEOUT_S = 60.0
PULL_MAX_BYTES = 64 * 1024 * 1024
"""A catalogue answer larger than this is refused (the live one is a few MB)."""


def add_catalogue_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = subparsers.add_parser(
        "catalogue",
        help="list, show or pull model catalogues",
        description=__doc__,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    files = argparse.ArgumentParser(add_help=False)
    files.add_argument(
        "--catalogue",
        action="append",
        default=[],
        metavar="FILE",
        help="a catalogue file read after the built-in one (repeatable)",
    )
    listing = actions.add_parser(
        "list", parents=[files], help="every model, a line each"
    )
    listing.add_argument("--json", action="store_true", help="print the served entries")
    show = actions.add_parser("show", parents=[files], help="one model's entry")
    show.add_argument("model_id", metavar="ID")
    pull = actions.add_parser(
        "pull", help="save a server's GET /api/v3/models answer as a catalogue file"
    )
    pull.add_argument("--api-key", required=True, help="the Bearer key to send")
    pull.add_argument(
        "--base-url",
        default=LIVE_BASE_URL,
        help=f"the server to ask (default {LIVE_BASE_URL}; a mock's URL works too)",
    )
    pull.add_argument("-o", "--output", required=True, type=Path, metavar="FILE")


def run_catalogue(args: argparse.Namespace) -> int:
    if args.action == "pull":
        return _pull(args.base_url, args.api_key, args.output)
    catalogue = Catalogue.with_files(args.catalogue)
    if args.action == "show":
        spec = catalogue.get(args.model_id)
        print(json.dumps(_described(spec), indent=2))
        return 0
    if args.json:
        print(json.dumps([spec.served() for spec in catalogue], indent=2))
        return 0
    for spec in catalogue:
        print(_line(spec))
    print(f"{len(catalogue)} models", file=sys.stderr)
    return 0


def _line(spec: ModelSpec) -> str:
    plan = spec.outputs_for({})
    size = f" {plan.width}x{plan.height}" if plan.width and plan.height else ""
    length = f" {plan.duration_s:g}s" if plan.duration_s else ""
    sound = " +audio" if plan.audio else ""
    return (
        f"{spec.id:48} {spec.type:16} {plan.kind} {plan.format}{size}{length}{sound}"
        f"  ${spec.price_for():g}  inferred: {len(spec.inferred)}"
    )


def _described(spec: ModelSpec) -> dict[str, Any]:
    """The entry as served, then what the mock makes of it."""
    served = spec.served()
    served["x-mock"] = {
        "output (defaults)": spec.outputs_for({}).as_dict(),
        "price (defaults)": spec.price_for(),
        "price rule": {
            k: v for k, v in vars(spec.price).items() if v not in (None, {}, "")
        },
        "contract": spec.contract,
        "processing_s": spec.processing_s,
        "sources": list(spec.sources),
        "inferred": list(spec.inferred),
    }
    return served


def _pull(base_url: str, api_key: str, output: Path) -> int:
    """Fetch ``GET {base_url}/api/v3/models`` and save it, checked, atomically."""
    import httpx

    url = base_url.rstrip("/") + "/api/v3/models"
    try:
        with httpx.stream(
            "GET",
            url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=PULL_TIMEOUT_S,
        ) as answer:
            chunks: list[bytes] = []
            size = 0
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if size > PULL_MAX_BYTES:
                    raise CatalogueError(
                        f"{url} answered more than {PULL_MAX_BYTES} bytes; refused."
                    )
                chunks.append(chunk)
            status = answer.status_code
    except httpx.HTTPError as exc:
        raise CatalogueError(f"Cannot fetch {url}: {exc}") from None
    raw = b"".join(chunks)
    if status != 200:
        raise CatalogueError(
            f"{url} answered HTTP {status}: {raw[:300].decode('utf-8', 'replace')}"
        )
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise CatalogueError(f"{url} did not answer JSON: {exc}") from None
    tmp = output.with_name(f".{output.name}.part")
    tmp.write_bytes(raw)
    try:
        # Only a catalogue the mock can serve is saved.
        count = len(Catalogue.with_files([tmp])) - len(Catalogue.with_files())
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    entries = document.get("data") if isinstance(document, dict) else document
    print(
        f"Saved {len(entries) if isinstance(entries, list) else '?'} models from "
        f"{url} to {output} ({count} not built in); serve them with "
        f"--catalogue {output}"
    )
    return 0
