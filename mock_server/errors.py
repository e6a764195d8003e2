"""Errors the server answers in the API's envelope."""

from __future__ import annotations

from collections.abc import Sequence

from ..contracts.errors import ContractError, WavespeedMockError

__all__ = ["ApiError", "bad_request", "bad_request_message"]


class ApiError(WavespeedMockError):
    """An HTTP error answered as ``{"code": status, "message": ...}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_code: str | None = None,
        headers: dict[str, str] | None = None,
        error: str | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = headers or {}
        self.error = error
        """The ``error`` text of an answer the docs show as ``{"error": ...}``,
        sent beside ``code`` and ``message``."""
        super().__init__(f"HTTP {status}: {message}")


def bad_request_message(
    problems: Sequence[ContractError], *, what: str = "body"
) -> str:
    """The one 400 message: every problem with its field's JSON path (at most five).

    Example: ``Invalid request body: $.seed: -2 is less than the minimum of -1``.
    """
    parts = []
    for exc in problems[:5]:
        hint = f" (did you mean {exc.suggestion!r}?)" if exc.suggestion else ""
        parts.append(f"{exc.path}: {exc.message}{hint}")
    more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
    return f"Invalid request {what}: " + "; ".join(parts) + more


def bad_request(path: str, message: str, *, what: str = "body") -> ApiError:
    """A 400 for one field, worded as :func:`bad_request_message` words it."""
    return ApiError(400, f"Invalid request {what}: {path}: {message}")
