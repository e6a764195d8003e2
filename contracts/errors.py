"""The exception hierarchy of wavespeed-mock.

Every error the package raises derives from :class:`WavespeedMockError` and from the
standard class that fits it, so callers can catch either.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ContractError",
    "UnknownModelError",
    "WavespeedMockError",
]


class WavespeedMockError(Exception):
    """Root of every error raised by wavespeed-mock."""


class UnknownModelError(WavespeedMockError, LookupError):
    """A model id that the catalogue does not know."""

    def __init__(
        self, model: str, known: list[str], suggestion: str | list[str] | None
    ) -> None:
        nearest = (
            [suggestion] if isinstance(suggestion, str) else list(suggestion or [])
        )
        self.model = model
        self.known = known
        self.nearest = nearest
        self.suggestion = nearest[0] if nearest else None
        hint = (
            " Did you mean " + " or ".join(repr(n) for n in nearest) + "?"
            if nearest
            else ""
        )
        super().__init__(
            f"Model {model!r} not found.{hint} The mock serves {len(known)} models "
            "(GET /api/v3/models lists them); add one with --catalogue FILE (a saved "
            "GET /api/v3/models answer works as it is), or serve any id with "
            "--any-model. See docs/catalogue.md."
        )


class ContractError(WavespeedMockError, ValueError):
    """A document that breaks the contract.

    Carries the JSON path of the offending value (``$.seed``), the schema path of
    the violated rule, the offending value itself and, for an unknown name, the
    closest valid one.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "$",
        schema_path: str = "",
        instance: Any = None,
        validator: str = "",
        suggestion: str | None = None,
        schema_name: str = "",
    ) -> None:
        self.message = message
        self.path = path
        self.schema_path = schema_path
        self.instance = instance
        self.validator = validator
        self.suggestion = suggestion
        self.schema_name = schema_name
        super().__init__(message)

    @property
    def field(self) -> str:
        """The JSON path without its ``$.`` root, as a user would name the field."""
        return self.path[2:] if self.path.startswith("$.") else self.path

    def __str__(self) -> str:
        lines = [f"{self.path}: {self.message}"]
        if self.suggestion:
            lines.append(f"  Did you mean {self.suggestion!r}?")
        if self.schema_name or self.schema_path:
            lines.append(f"  Rule: {self.schema_name}#{self.schema_path}")
        lines.append(f"  Value: {_short_repr(self.instance)}")
        return "\n".join(lines)


def _short_repr(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
