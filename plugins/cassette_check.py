"""The contract check of a recording: ``wavespeed-mock check --cassette FOLDER``.

A recording of the real API is evidence; this checks it against the contract as
it stands now (so a change to the contract can be tried on every recording):
each recorded body against its schema, each task's statuses in the lifecycle's
order, and each stored output against its recorded digest.

Example:
    >>> report = check_cassette(Path("tests/cassettes/run"))  # doctest: +SKIP
    >>> print(report.render())  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ..contracts import terminal_statuses
from ..mock_server.features.replay import Cassette, RecordedTask, exchange_violations
from ._check_report import Finding, Level, render_findings

__all__ = ["CassetteReport", "check_cassette"]

# The lifecycle's order; terminal statuses share the last rank.
_RANK = {"created": 0, "processing": 1}
_MP4_BRAND_AT = slice(4, 8)


@dataclass
class CassetteReport:
    """What the check of one cassette found."""

    cassette: Path
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.level == "violation" for f in self.findings)

    def add(self, level: Level, name: str, detail: str) -> None:
        self.findings.append(Finding(level, name, detail))

    def render(self) -> str:
        lines = [
            f"wavespeed-mock contract check of cassette {str(self.cassette)!r}",
            "",
        ]
        lines += render_findings(self.findings)
        counts = {
            level: sum(f.level == level for f in self.findings)
            for level in ("pass", "warning", "violation")
        }
        lines += [
            "",
            f"{counts['pass']} passed, {counts['warning']} warnings, "
            f"{counts['violation']} violations: {'OK' if self.ok else 'FAILED'}",
        ]
        if not self.ok:
            lines.append(
                "A violation in a recording of the real API means the contract is "
                "wrong there: see docs/record-replay.md, 'How a recording upgrades "
                "an inferred fact'."
            )
        return "\n".join(lines)


def check_cassette(path: Path) -> CassetteReport:
    """Check a recorded cassette against the current contract.

    Raises:
        CassetteError: no readable cassette at ``path``.
    """
    cassette = Cassette.load(path)
    report = CassetteReport(cassette.root)
    for i, exchange in enumerate(cassette.exchanges):
        problems = exchange_violations(exchange, f"exchanges[{i}]")
        if problems:
            report.add(
                "violation",
                f"cassette.json {exchange.method} {exchange.path}",
                _lines(problems),
            )
    for task in cassette.tasks:
        _check_task(cassette, task, report)
    if not cassette.tasks and not cassette.exchanges:
        report.add("warning", "cassette", "the cassette holds no recording")
    return report


def _check_task(cassette: Cassette, task: RecordedTask, report: CassetteReport) -> None:
    name = f"tasks/{task.file}"
    problems = exchange_violations(task.submit, "submit", model=task.model)
    for i, poll in enumerate(task.polls):
        problems += exchange_violations(poll, f"polls[{i}]")
    if problems:
        report.add("violation", f"{name} contract", _lines(problems))
    if task.submit.status != 200:
        if not problems:
            report.add(
                "pass", name, f"refused with HTTP {task.submit.status}, as recorded"
            )
        return
    statuses = task.statuses
    terminal = terminal_statuses()
    order = [_RANK.get(s, 2 if s in terminal else -1) for s in statuses]
    if (
        -1 in order
        or order != sorted(order)
        or sum(s in terminal for s in statuses) > 1
    ):
        report.add(
            "violation",
            f"{name} lifecycle",
            f"statuses {' -> '.join(statuses)} break the order created -> "
            "processing -> one terminal status",
        )
        return
    if not statuses or statuses[-1] not in terminal:
        report.add(
            "warning",
            f"{name} lifecycle",
            f"the recording ends at {statuses[-1] if statuses else 'no status'!r}, "
            "before the task finished: a replay stays there",
        )
    file_problems = (
        _file_problems(cassette, task) if statuses[-1:] == ["completed"] else []
    )
    if file_problems:
        report.add("violation", f"{name} outputs", "\n".join(file_problems))
    elif not problems:
        report.add("pass", name, " -> ".join(statuses))


def _file_problems(cassette: Cassette, task: RecordedTask) -> list[str]:
    last = next((p for p in reversed(task.polls) if p.data.get("status")), task.submit)
    outputs = last.data.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        return ["completed without outputs"]
    if len(last.files) != len(outputs):
        return [f"{len(outputs)} outputs but {len(last.files)} recorded files"]
    problems = []
    for i, file in enumerate(last.files):
        if file.name is None:
            problems.append(f"output {i} was not stored: {file.error}")
            continue
        path = cassette.output_path(file.name)
        if path is None:
            problems.append(f"output {i}: outputs/{file.name} is missing")
            continue
        content = path.read_bytes()
        if hashlib.sha256(content).hexdigest() != file.name.split(".", 1)[0]:
            problems.append(
                f"output {i}: outputs/{file.name} does not match its digest"
            )
        elif file.name.endswith(".mp4") and content[_MP4_BRAND_AT] != b"ftyp":
            problems.append(f"output {i}: outputs/{file.name} is not an MP4")
    return problems


def _lines(problems: list[dict[str, str]]) -> str:
    return "\n".join(f"{p['where']} {p['path']}: {p['message']}" for p in problems)
