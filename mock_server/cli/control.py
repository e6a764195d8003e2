"""``wavespeed-mock control``: steer a running server from a shell."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..settings import CONTROL_PREFIX, ENV_PREFIX

__all__ = ["add_control_parser", "run_control"]


def add_control_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    control = subparsers.add_parser(
        "control",
        help="steer a running mock server (reset, profile, clock, scenarios, logs)",
        description="Talk to a running server's /_mock control API.",
    )
    control.add_argument(
        "--url",
        default="http://127.0.0.1:8000",
        help="the server (default %(default)s)",
    )
    control.add_argument(
        "--control-token",
        default=None,
        metavar="TOKEN",
        help="the server's --control-token (default: $WAVESPEED_MOCK_CONTROL_TOKEN)",
    )
    actions = control.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("state", help="profile, clock and counts")
    actions.add_parser("reset", help="forget every prediction")
    profile = actions.add_parser("profile", help="set the timing profile")
    profile.add_argument("name", help="instant, fast, realistic, polls:N or engine")
    clock = actions.add_parser("clock", help="virtual clock control")
    clock.add_argument("--virtual", action="store_true", help="freeze the clock")
    clock.add_argument("--real", action="store_true", help="back to real time")
    clock.add_argument("--advance", type=float, help="seconds to move a virtual clock")
    scenario = actions.add_parser(
        "scenario",
        help="set a scenario from JSON, e.g. '{\"fail_code\": 1402}' (see docs/scenarios.md)",
    )
    scenario.add_argument("json", help="the scenario object")
    actions.add_parser("scenarios", help="list the scenarios in force")
    actions.add_parser("clear-scenarios", help="remove every scenario")
    for name, text in (
        ("predictions", "stored predictions and their seeds"),
        ("journal", "the last requests"),
        ("webhooks", "webhook delivery attempts"),
        ("ledger", "spend and balance per key"),
    ):
        actions.add_parser(name, help=text)


def run_control(args: argparse.Namespace) -> int:
    import httpx

    base = args.url.rstrip("/") + CONTROL_PREFIX
    action = args.action
    body: dict[str, Any] | None = None
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
    token = args.control_token or os.environ.get(ENV_PREFIX + "CONTROL_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(
            method, base + path, json=body, headers=headers, timeout=30
        )
    except httpx.HTTPError as exc:
        print(
            f"wavespeed-mock control: cannot reach {args.url}: {exc}", file=sys.stderr
        )
        return 2
    answer = (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else response.text
    )
    print(
        json.dumps(
            answer.get("data", answer) if isinstance(answer, dict) else answer, indent=2
        )
    )
    return 0 if response.status_code == 200 else 1
