"""What the contract check found, its spending plan, and the readable report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .errors import ContractViolation

Level = Literal["pass", "warning", "violation"]

_LABELS = {"pass": "PASS", "warning": "WARNING", "violation": "VIOLATION"}


@dataclass(frozen=True)
class Finding:
    """One result of the contract check.

    ``violation`` breaks what WaveSpeed documents or its official SDKs rely on;
    ``warning`` is a difference from the mock's own inferences (an exact status
    code the docs do not give, 400 versus a failed task); ``pass`` is a check
    that held.
    """

    level: Level
    name: str
    detail: str


@dataclass(frozen=True)
class SpendPlan:
    """The most the check may spend: one clip of each selected model."""

    models: tuple[str, ...]
    prices_usd: tuple[float, ...]
    limit_usd: float

    @property
    def total_usd(self) -> float:
        return round(sum(self.prices_usd), 6)

    def describe(self) -> str:
        clips = ", ".join(
            f"{m} ${p:.2f}" for m, p in zip(self.models, self.prices_usd, strict=True)
        )
        return (
            f"May spend at most ${self.total_usd:.2f} (one clip each: {clips}); "
            f"limit ${self.limit_usd:.2f}."
        )


@dataclass
class CheckReport:
    """Everything one run of the contract check found.

    Example:
        >>> report = run_contract_check(base_url, "key")  # doctest: +SKIP
        >>> print(report.render())  # doctest: +SKIP
        >>> report.assert_ok()  # doctest: +SKIP
    """

    base_url: str
    plan: SpendPlan
    findings: list[Finding] = field(default_factory=list)
    #: Worst-case charges of the tasks the target accepted, by registry price.
    spent_usd: float = 0.0
    #: Why the target could not be reached (then nothing else was checked).
    unreachable: str | None = None

    @property
    def ok(self) -> bool:
        """Reached, and no violation (warnings do not count)."""
        return self.unreachable is None and not self.violations

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "violation"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def add(self, level: Level, name: str, detail: str) -> Finding:
        finding = Finding(level, name, detail)
        self.findings.append(finding)
        return finding

    def render(self) -> str:
        """The report as text: the plan, one line per finding, a summary."""
        lines = [
            f"wavespeed-mock contract check of {self.base_url}",
            self.plan.describe(),
            f"Charged at most ${self.spent_usd:.2f} (tasks the target accepted, at "
            f"registry prices).",
            "",
        ]
        if self.unreachable is not None:
            lines[-1:] = [
                f"CANNOT REACH {self.base_url}: {self.unreachable}",
                "Nothing was checked; is the server running at that URL?",
            ]
            return "\n".join(lines)
        lines += render_findings(self.findings)
        passed = sum(f.level == "pass" for f in self.findings)
        verdict = "OK" if self.ok else "FAILED"
        lines += [
            "",
            f"{passed} passed, {_plural(len(self.warnings), 'warning')}, "
            f"{_plural(len(self.violations), 'violation')}: {verdict}",
        ]
        if self.warnings:
            lines.append(
                "Warnings mark where the target differs from the mock's own inferences "
                "(undocumented behaviour); they never fail the check."
            )
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Fail the calling test with the whole report if there is a violation.

        Raises:
            ContractViolation: an ``AssertionError`` whose message is the report.
        """
        __tracebackhide__ = True
        if self.unreachable is not None:
            raise ContractViolation(
                self.render(), path="$", rule="reach", instance=self.unreachable
            )
        if not self.ok:
            first = self.violations[0]
            raise ContractViolation(
                self.render(), path="$", rule=first.name, instance=first.detail
            )


def render_findings(findings: list[Finding]) -> list[str]:
    """One aligned line per finding (more for a multi-line detail)."""
    lines = []
    width = max((len(f.name) for f in findings), default=0)
    for finding in findings:
        head = f"  {_LABELS[finding.level]:<10} {finding.name:<{width}}  "
        detail = finding.detail.splitlines() or [""]
        lines.append(head + detail[0])
        lines.extend(" " * len(head) + more for more in detail[1:])
    return lines


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
