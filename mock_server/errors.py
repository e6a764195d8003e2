"""Errors the server answers in the API's envelope."""

from __future__ import annotations

from ..contracts.errors import WavespeedMockError

__all__ = ["ApiError"]


class ApiError(WavespeedMockError):
    """An HTTP error answered as ``{"code": status, "message": ...}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = headers or {}
        super().__init__(f"HTTP {status}: {message}")
