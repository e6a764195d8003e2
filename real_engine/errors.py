"""Errors of the real engine, rooted in the server's :class:`EngineError`."""

from __future__ import annotations

from ..mock_server.core.engine import EngineError

__all__ = ["OviSetupError", "OviWorkerError"]


class OviSetupError(EngineError, LookupError):
    """Something the Ovi engine needs is missing; the message lists all of it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            "The Ovi engine cannot start; "
            f"{len(self.problems)} thing(s) are missing or wrong:\n{lines}\n"
            "See docs/real-engine.md for the full set-up."
        )


class OviWorkerError(EngineError):
    """The worker process that holds the model failed to start or load it."""
