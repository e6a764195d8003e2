"""The contract check: does a server behave like the WaveSpeedAI API?

One implementation, run against any base URL (the mock, the real API, a server
running the real engine), from the command line (``wavespeed-mock check``) or from
a downstream pytest suite. It asserts what WaveSpeed documents or its official
SDKs rely on (auth errors, the result envelope, the lifecycle order, the clip:
MP4, 24 fps, about 5 s, with audio) and reports the mock's own inferences (400
versus a failed task, exact status codes the docs do not give) as warnings, so the
real API never fails on the mock's guesses.

Against a paid API it never spends more than ``max_spend`` dollars at registry
prices (default: one clip of each selected model) and says what it may spend
before it starts.

Example:
    >>> report = run_contract_check("http://127.0.0.1:8000", "key")  # doctest: +SKIP
    >>> print(report.render())  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from ..contracts import (
    ModelSpec,
    get_model,
    list_models,
    refunded_statuses,
    request_schema,
)
from ..contracts.errors import WavespeedMockError
from ._check_report import CheckReport, Finding, SpendPlan
from ._check_steps import PLACEHOLDER_IMAGE, Target, check_body, envelope_problems
from .errors import SpendLimitError

__all__ = [
    "DEFAULT_POLL_INTERVAL_S",
    "CheckReport",
    "Finding",
    "SpendPlan",
    "add_check_parser",
    "plan_spend",
    "run_check",
    "run_contract_check",
]

CHECK_TIMEOUT_S = 1800.0
"""How long the check waits for one task: a real Ovi clip takes one to two
minutes, and about 12 on some GPUs for the 960x960 10 s variant (Ovi#84); the
synthetic engine's tasks end in seconds, so the bound costs them nothing."""

#: WaveSpeed's docs ask for at least 5 s between polls of a video task.
DEFAULT_POLL_INTERVAL_S = 5.0
API_KEY_ENV = "WAVESPEED_API_KEY"


def plan_spend(
    models: Sequence[str] | None = None, *, max_spend: float | None = None
) -> SpendPlan:
    """The most a check of ``models`` may spend: one clip each, at registry prices.

    Raises:
        SpendLimitError: the plan costs more than ``max_spend``.
        UnknownModelError: a model the registry does not know.
        ValueError: an empty model list or a negative ``max_spend``.
    """
    # By default the flagship: the models whose requests the contract's own
    # schemas check (Ovi); any catalogue model with --model ID.
    ids = (
        tuple(models)
        if models is not None
        else tuple(m.id for m in list_models() if m.contract is not None)
    )
    if not ids:
        raise ValueError(
            "The contract check needs at least one model; got an empty list."
        )
    if max_spend is not None and max_spend < 0:
        raise ValueError(f"max_spend must be at least 0 dollars, got {max_spend!r}")
    prices = tuple(get_model(model).price_for() for model in ids)
    total = round(sum(prices), 6)
    limit = total if max_spend is None else float(max_spend)
    plan = SpendPlan(ids, prices, limit)
    if total > limit + 1e-9:
        clips = ", ".join(f"{m} ${p:.2f}" for m, p in zip(ids, prices, strict=True))
        raise SpendLimitError(plan.total_usd, limit, f"one clip each: {clips}")
    return plan


def run_contract_check(
    base_url: str,
    api_key: str,
    *,
    models: Sequence[str] | None = None,
    max_spend: float | None = None,
    timeout_s: float = CHECK_TIMEOUT_S,
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    client: httpx.Client | None = None,
    progress: Callable[[str], None] | None = None,
) -> CheckReport:
    """Check a server against the WaveSpeedAI contract.

    Args:
        base_url: the server, e.g. ``https://api.wavespeed.ai`` (paths start
            ``/api/v3``).
        api_key: the bearer key.
        models: model ids to generate one clip each of (default: every registered
            model).
        max_spend: the most, in dollars, the check may spend (default: the price of
            one clip of each selected model).
        timeout_s: how long one task may take to finish.
        poll_interval_s: the pause between polls of a task.
        client: the HTTP client to use (tests pass one with a mock transport);
            the check never closes a client it did not open.
        progress: called with a line before each step, the spending plan first.

    Returns:
        The report; ``report.ok`` is False when the server broke the contract.

    Raises:
        SpendLimitError: before any request, when the plan costs more than
            ``max_spend``.
        UnknownModelError: a model the registry does not know.
    """
    plan = plan_spend(models, max_spend=max_spend)
    say = progress or (lambda line: None)
    say(plan.describe())
    report = CheckReport(base_url, plan)
    specs = [get_model(model) for model in plan.models]
    http = client if client is not None else _open_client()
    target = Target(
        http,
        base_url,
        api_key,
        report,
        timeout_s=timeout_s,
        poll_interval_s=poll_interval_s,
        progress=say,
    )
    try:
        say(f"Reaching {base_url}")
        report.unreachable = target.unreachable()
        if report.unreachable is not None:
            return report
        say("Checking authentication and error answers")
        target.check_missing_key(specs[0])
        target.check_unknown_prediction()
        image_url = None
        if any(spec.takes_image for spec in specs):
            say("Uploading the check image")
            image_url = target.upload_image()
        say("Submitting an invalid body")
        _check_bad_body(target, specs)
        for spec in specs:
            say(f"Generating one clip of {spec.id}")
            _check_model(target, spec, image_url)
    finally:
        if client is None:
            http.close()
    return report


def _open_client() -> httpx.Client:
    # A generous read timeout: a submit to a busy real API can take a while.
    return httpx.Client(timeout=httpx.Timeout(60.0))


def _check_bad_body(target: Target, specs: list[ModelSpec]) -> None:
    """Submit a body without its first required field.

    An image model goes first: a body without its image cannot become a billable
    clip. The mock answers 400; whether the real API does, or accepts the task and
    fails it with code 1400/1401, is undocumented, so anything but a broken
    success answer is a warning.
    """
    report = target.report
    spec = next((s for s in specs if s.takes_image), specs[0])
    missing = str(request_schema(spec.id, strict=True)["required"][0])
    body = {
        k: v for k, v in check_body(spec, PLACEHOLDER_IMAGE).items() if k != missing
    }
    name = "submit/bad-body"
    answer, task_id = target.submit(spec, body, name, expect_valid=False)
    if answer is None:
        return
    if answer.status_code == 400:
        problems = envelope_problems(answer)
        if problems:
            report.add(
                "warning",
                name,
                "HTTP 400, but not in the {code, message} "
                "envelope:\n" + "\n".join(problems),
            )
            return
        named = missing in str(answer.json().get("message", ""))
        report.add(
            "pass",
            name,
            f"HTTP 400 in the envelope for a body without "
            f"{missing!r}" + ("; the message names the field" if named else ""),
        )
        return
    if answer.status_code != 200 or task_id is None:
        report.add(
            "warning",
            name,
            f"a body without {missing!r} got HTTP {answer.status_code} "
            f"{answer.text[:120]!r}; the mock answers 400 in the error envelope "
            f"(inferred)",
        )
        return
    price = spec.price_for()
    report.spent_usd += price
    problems = target.contract_errors(answer, "POST", spec.path)
    if problems:
        report.add(
            "violation",
            name,
            "the HTTP 200 answer breaks the prediction "
            "envelope:\n" + "\n".join(problems[:5]),
        )
    outcome = target.poll(task_id, name, first=_data(answer))
    data = outcome.data or {}
    status, code = data.get("status"), data.get("code")
    if status in refunded_statuses():
        report.spent_usd -= price
    if status == "failed" and code in (1400, 1401):
        detail = (
            f"the target accepts a body without {missing!r} (HTTP 200) and fails "
            f"the task with code {code}; the mock answers HTTP 400 instead "
            f"(inferred: the docs allow both)"
        )
    else:
        detail = (
            f"the target accepts a body without {missing!r} (HTTP 200); the task "
            f"ended {status!r} with code {code!r}; the mock answers HTTP 400 "
            f"(inferred)"
        )
    report.add("warning", name, detail)


def _check_model(target: Target, spec: ModelSpec, image_url: str | None) -> None:
    report = target.report
    name = spec.id
    price = spec.price_for()
    if spec.takes_image and image_url is None:
        report.add(
            "warning",
            f"{name}/submit",
            "skipped: no uploaded image the target can fetch (see media/...)",
        )
        return
    if report.spent_usd + price > report.plan.limit_usd + 1e-9:
        report.add(
            "warning",
            f"{name}/submit",
            f"skipped: one more clip (${price:.2f}) would pass the spending "
            f"limit ${report.plan.limit_usd:.2f} (${report.spent_usd:.2f} "
            f"charged so far)",
        )
        return
    answer, task_id = target.submit(
        spec, check_body(spec, image_url or ""), f"{name}/submit"
    )
    if answer is None:
        return
    if task_id is not None:
        report.spent_usd += price
    problems = []
    if answer.status_code != 200:
        problems.append(
            f"HTTP {answer.status_code}; the official Python SDK accepts "
            f"exactly 200 and fails on anything else (SDK-observed)"
        )
    problems += target.contract_errors(answer, "POST", spec.path)
    data = _data(answer)
    if task_id is None:
        problems.append(
            "no data.id in the answer (the SDKs fail with 'No request ID in response')"
        )
    elif data is not None and data.get("model") not in (None, spec.id):
        problems.append(f"$.data.model is {data.get('model')!r}, not {spec.id!r}")
    if problems:
        report.add("violation", f"{name}/submit", "\n".join(dict.fromkeys(problems)))
    else:
        report.add(
            "pass",
            f"{name}/submit",
            f"HTTP 200, data.id {task_id}, status {data and data.get('status')!r}",
        )
    if task_id is None:
        return
    outcome = target.poll(task_id, name, first=data)
    final = outcome.data or {}
    status = final.get("status")
    if not outcome.finished:
        return
    if status != "completed":
        if status in refunded_statuses():
            report.spent_usd -= price
        report.add(
            "violation",
            f"{name}/result",
            f"the task ended {status!r} (code {final.get('code')!r}, error "
            f"{final.get('error')!r}) for a documented, valid body",
        )
        return
    target.check_output(spec, final, name)


def _data(answer: httpx.Response) -> dict[str, Any] | None:
    try:
        data = answer.json().get("data")
    except (ValueError, AttributeError):
        return None
    return (
        data if isinstance(data, dict) and isinstance(data.get("status"), str) else None
    )


# -- the command line --------------------------------------------------------------


def add_check_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``check`` subcommand, with ``run_check`` as its ``handler`` default."""
    parser = subparsers.add_parser(
        "check",
        help="check a server (the mock, the real API, the real engine) "
        "against the contract",
        description=(
            "Run the contract check against BASE_URL and print a report. Violations "
            "(documented or SDK-observed behaviour broken) give exit status 1; "
            "warnings (the mock's own inferences) do not. Against a paid API the "
            "check states what it may spend before it starts."
        ),
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--base-url", help="the server, e.g. https://api.wavespeed.ai")
    target.add_argument(
        "--cassette",
        type=Path,
        metavar="FOLDER",
        help="check a recording instead of a server: every recorded body against "
        "the contract, each task's lifecycle, the stored outputs "
        "(docs/record-replay.md)",
    )
    parser.add_argument(
        "--api-key", default=None, help=f"the bearer key (default: ${API_KEY_ENV})"
    )
    parser.add_argument(
        "--models",
        "--model",
        nargs="+",
        action="extend",
        default=None,
        metavar="MODEL",
        choices=[m.id for m in list_models()],
        help="catalogue model ids to check (repeatable; default: the models the "
        "contract's own schemas check, Ovi's)",
    )
    parser.add_argument(
        "--max-spend",
        type=float,
        default=None,
        metavar="USD",
        help="the most the check may spend, in dollars "
        "(default: one clip of each selected model)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=CHECK_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long one task may take (default: {CHECK_TIMEOUT_S:.0f})",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULT_POLL_INTERVAL_S,
        metavar="SECONDS",
        help=f"pause between polls (default: {DEFAULT_POLL_INTERVAL_S:g}, "
        f"as the docs ask for video tasks)",
    )
    parser.set_defaults(handler=run_check)
    return parser


def run_check(args: argparse.Namespace) -> int:
    """Run the check from parsed arguments; print the report.

    Returns:
        0 when there is no violation, 1 when there is, 2 when the check did not
        run (no key, an unknown model, a plan over ``--max-spend``, a target that
        cannot be reached).
    """
    if getattr(args, "cassette", None) is not None:
        return _run_cassette_check(args.cassette)
    api_key = args.api_key or os.environ.get(API_KEY_ENV)
    if not api_key:
        print(
            f"wavespeed-mock check: no API key; pass --api-key or set {API_KEY_ENV}.",
            file=sys.stderr,
        )
        return 2
    try:
        report = run_contract_check(
            args.base_url,
            api_key,
            models=args.models,
            max_spend=args.max_spend,
            timeout_s=args.timeout,
            poll_interval_s=getattr(args, "poll_interval", DEFAULT_POLL_INTERVAL_S),
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except (WavespeedMockError, ValueError) as exc:
        print(f"wavespeed-mock check: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    if report.unreachable is not None:
        return 2
    return 0 if report.ok else 1


def _run_cassette_check(path: Path) -> int:
    from .cassette_check import check_cassette

    try:
        report = check_cassette(path)
    except WavespeedMockError as exc:
        print(f"wavespeed-mock check: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.ok else 1
