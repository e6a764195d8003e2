"""``wavespeed-mock control``: steer a running server from a shell.

The server is found as ``serve`` binds it: ``--url``, else ``--host``/``--port``,
else ``WAVESPEED_MOCK_HOST``/``WAVESPEED_MOCK_PORT``, else 127.0.0.1:8000. The
options are accepted before or after the action.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..core.prediction import format_timestamp, parse_timestamp
from ..settings import CONTROL_PREFIX, ENV_PREFIX, Settings

__all__ = ["add_control_parser", "run_control", "server_url"]

JOURNAL_DEFAULT_LIMIT = 20


def _connection_options(*, suppress: bool) -> argparse.ArgumentParser:
    """``--url``/``--host``/``--port``, for the command and for each action.

    Given after the action, a value must not be overwritten by the command's
    default, hence ``SUPPRESS`` there.
    """
    default = argparse.SUPPRESS if suppress else None
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("where the server is")
    group.add_argument(
        "--url",
        default=default,
        help="the server's base URL (default: http://HOST:PORT)",
    )
    group.add_argument(
        "--host",
        default=default,
        help="the server's host (default $WAVESPEED_MOCK_HOST or 127.0.0.1)",
    )
    group.add_argument(
        "--port",
        type=int,
        default=default,
        help="the server's port (default $WAVESPEED_MOCK_PORT or 8000)",
    )
    group.add_argument(
        "--control-token",
        default=default,
        metavar="TOKEN",
        help="the server's --control-token (default $WAVESPEED_MOCK_CONTROL_TOKEN)",
    )
    return options


def add_control_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    control = subparsers.add_parser(
        "control",
        help="steer a running mock server (reset, profile, clock, scenarios, logs)",
        description="Talk to a running server's /_mock control API.",
        parents=[_connection_options(suppress=False)],
    )
    after = [_connection_options(suppress=True)]
    actions = control.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("state", help="profile, clock and counts", parents=after)
    actions.add_parser("reset", help="forget every prediction", parents=after)
    profile = actions.add_parser(
        "profile", help="set the timing profile", parents=after
    )
    profile.add_argument("name", help="instant, fast, realistic, polls:N or engine")
    clock = actions.add_parser("clock", help="virtual clock control", parents=after)
    clock.add_argument("--virtual", action="store_true", help="freeze the clock")
    clock.add_argument("--real", action="store_true", help="back to real time")
    clock.add_argument("--advance", type=float, help="seconds to move a virtual clock")
    scenario = actions.add_parser(
        "scenario",
        help="set a scenario from JSON, e.g. '{\"fail_code\": 1402}' (see docs/scenarios.md)",
        parents=after,
    )
    scenario.add_argument("json", help="the scenario object")
    actions.add_parser("scenarios", help="list the scenarios in force", parents=after)
    actions.add_parser("clear-scenarios", help="remove every scenario", parents=after)
    journal = actions.add_parser(
        "journal",
        help="the last requests, newest last, one JSON object a line",
        parents=after,
    )
    journal.add_argument(
        "--limit",
        type=int,
        default=JOURNAL_DEFAULT_LIMIT,
        help="show at most this many, the newest (default %(default)s; 0: all kept)",
    )
    journal.add_argument(
        "--since",
        type=_iso_time,
        help="only requests answered at or after this ISO 8601 time, "
        "e.g. 2026-01-02T03:04:05Z (no zone: UTC)",
    )
    for name, text in (
        ("predictions", "stored predictions and their seeds"),
        ("webhooks", "webhook delivery attempts"),
        ("ledger", "spend and balance per key"),
    ):
        actions.add_parser(name, help=text, parents=after)


def _iso_time(text: str) -> str:
    """An ISO 8601 time, checked here and sent on in RFC 3339 UTC (UTC when no zone)."""
    try:
        seconds = parse_timestamp(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time; write e.g. 2026-01-02T03:04:05Z"
        ) from None
    return format_timestamp(seconds, 6)


def server_url(args: argparse.Namespace) -> str:
    """The base URL ``args`` point at, read as ``serve`` reads its settings."""
    if getattr(args, "url", None):
        return str(args.url).rstrip("/")
    settings = Settings.from_env(
        host=getattr(args, "host", None), port=getattr(args, "port", None)
    )
    # A server bound to every address is reached on loopback.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
        settings.host, settings.host
    )
    return settings.replace(host=host, public_url=None).base_url


def run_control(args: argparse.Namespace) -> int:
    import httpx

    url = server_url(args)
    base = url + CONTROL_PREFIX
    action = args.action
    body: dict[str, Any] | None = None
    params: dict[str, Any] = {}
    method = "GET"
    path = {"clear-scenarios": "/scenarios"}.get(action, "/" + action)
    if action == "reset":
        method, body = "POST", {}
    elif action == "profile":
        method, body = "POST", {"profile": args.name}
    elif action == "clock":
        method, body = "POST", {}
        if args.virtual:
            body["virtual"] = True
        if args.real:
            body["virtual"] = False
        if args.advance is not None:
            body["advance"] = args.advance
    elif action == "scenario":
        try:
            body = json.loads(args.json)
        except json.JSONDecodeError as exc:
            print(
                f"wavespeed-mock control: the scenario is not JSON: {exc}",
                file=sys.stderr,
            )
            return 2
        method, path = "POST", "/scenarios"
    elif action == "clear-scenarios":
        method = "DELETE"
    elif action == "journal":
        if args.limit < 0:
            print("wavespeed-mock control: --limit must be 0 or more", file=sys.stderr)
            return 2
        if args.limit:
            params["limit"] = args.limit
        if args.since:
            params["since"] = args.since
    token = getattr(args, "control_token", None) or os.environ.get(
        ENV_PREFIX + "CONTROL_TOKEN"
    )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(
            method,
            base + path,
            json=body,
            params=params,
            headers=headers,
            timeout=30,
        )
    except httpx.HTTPError as exc:
        print(f"wavespeed-mock control: cannot reach {url}: {exc}", file=sys.stderr)
        return 2
    answer = (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else response.text
    )
    data: Any = answer.get("data", answer) if isinstance(answer, dict) else answer
    if action == "journal" and response.status_code == 200:
        # One request a line, so that head, tail and grep work on it.
        for item in data["items"]:
            print(json.dumps({**item, "at": format_timestamp(item["at"])}))
    elif action == "scenario" and response.status_code == 200 and body is not None:
        # What was set, in one line (the whole scenario, every default included,
        # was 70 lines): `control scenarios` lists everything in force.
        chosen = {"scope": body.get("scope", "global")}
        chosen |= {k: data["scenario"][k] for k in body if k in data["scenario"]}
        print(json.dumps({"scenario": chosen}))
    else:
        print(json.dumps(data, indent=2))
    return 0 if response.status_code == 200 else 1
