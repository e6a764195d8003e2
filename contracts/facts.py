"""Facts of the API that code needs as values, read from the contract's documents.

Each fact is stated once, in the schema where it belongs (``common.json``,
``prediction.json``), with its provenance tag; this module only reads it, so the
server, the plugin and the real engine cannot disagree.

Example:
    >>> from wavespeed_mock.contracts import seed_rule, terminal_statuses
    >>> seed_rule().maximum
    2147483647
    >>> "completed" in terminal_statuses()
    True
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any

from ._resources import load_schema

__all__ = [
    "FACT_KEYWORDS",
    "BodyLimits",
    "SeedRule",
    "body_limits",
    "did_you_mean",
    "image_formats",
    "refunded_statuses",
    "seed_rule",
    "statuses",
    "task_errors",
    "terminal_statuses",
    "upload_limits",
]

FACT_KEYWORDS = (
    "x-random-seed",
    "x-image-formats",
    "x-submit-body-bytes",
    "x-json-body-bytes",
    "x-json-max-depth",
    "x-json-max-number-chars",
    "x-upload-max-bytes",
    "x-terminal",
    "x-refunded",
    "x-messages",
)
"""The schema keywords that carry these facts (annotations: they validate nothing)."""
SUGGESTION_CUTOFF = 0.6
"""How alike a name must be to be offered as "did you mean" (difflib's ratio)."""


@dataclass(frozen=True)
class SeedRule:
    """The request's ``seed``: ``random`` asks the server to draw one."""

    minimum: int
    """The smallest seed a render uses (the request's minimum is ``random``)."""
    maximum: int
    random: int
    """The request value that means "draw a seed" (-1)."""

    def resolve(self, requested: int, draw: Callable[[int, int], int]) -> int:
        """``requested``, or ``draw(minimum, maximum)`` when it asks for a random
        seed; a seed past ``maximum`` (accepted outside strict mode,
        ``common.json#/$defs/large_seed``) is reduced modulo ``maximum + 1``.

        Example:
            >>> seed_rule().resolve(-1, random.SystemRandom().randint)  # doctest: +SKIP
            1837265531
        """
        if requested == self.random:
            return draw(self.minimum, self.maximum)
        return requested % (self.maximum + 1) if requested > self.maximum else requested


@dataclass(frozen=True)
class BodyLimits:
    """Largest request bodies (in bytes) and the shape bounds of a JSON body."""

    submit_bytes: int
    """A submit body (it may carry a ``data:`` image)."""
    json_bytes: int
    """Every other JSON body: control API, upload tickets, history, delete, price."""
    max_depth: int = 32
    """How deep arrays and objects may nest in any JSON body."""
    max_number_chars: int = 100
    """The longest number literal in any JSON body."""


def _common(name: str) -> Any:
    return load_schema("common.json")["$defs"][name]


def _status_schema() -> Any:
    return load_schema("prediction.json")["properties"]["status"]


@cache
def seed_rule() -> SeedRule:
    """The seed bounds and the random-seed value, from ``common.json#/$defs/seed``."""
    seed = _common("seed")
    random = int(seed["x-random-seed"])
    return SeedRule(
        minimum=max(int(seed["minimum"]), random + 1),
        maximum=int(seed["maximum"]),
        random=random,
    )


@cache
def statuses() -> tuple[str, ...]:
    """Every task status, in lifecycle order."""
    return tuple(_status_schema()["enum"])


@cache
def terminal_statuses() -> frozenset[str]:
    """Statuses after which a task never changes (``x-terminal``)."""
    return frozenset(_status_schema()["x-terminal"])


@cache
def refunded_statuses() -> frozenset[str]:
    """Terminal statuses whose charge is refunded (``x-refunded``)."""
    return frozenset(_status_schema()["x-refunded"])


@cache
def body_limits() -> BodyLimits:
    """Request body bounds, from ``common.json#/$defs/body_limits``."""
    limits = _common("body_limits")
    return BodyLimits(
        submit_bytes=int(limits["x-submit-body-bytes"]),
        json_bytes=int(limits["x-json-body-bytes"]),
        max_depth=int(limits["x-json-max-depth"]),
        max_number_chars=int(limits["x-json-max-number-chars"]),
    )


@cache
def image_formats() -> frozenset[str]:
    """Image formats a request's image may have (Pillow's format names)."""
    return frozenset(_common("data_uri")["x-image-formats"])


@cache
def task_errors() -> Mapping[int, str]:
    """The task error codes the API documents, with their texts (read-only)."""
    messages = _common("task_error_code")["x-messages"]
    return MappingProxyType({int(code): text for code, text in messages.items()})


@cache
def upload_limits() -> Mapping[str, int]:
    """Bytes ``POST /api/v3/upload`` takes at most, by kind (``image``, ``video``, ``audio``).

    Read-only: the answer is cached and shared.
    """
    limits = _common("upload_limits")["x-upload-max-bytes"]
    return MappingProxyType({kind: int(size) for kind, size in limits.items()})


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``name``, if one is close enough to suggest.

    The one place names are matched, so every "did you mean" in the project (model
    ids, body fields, engines, schemas, variants) offers the same suggestions.

    Example:
        >>> did_you_mean("promt", ["prompt", "seed"])
        'prompt'
    """
    close = difflib.get_close_matches(
        name, list(choices), n=1, cutoff=SUGGESTION_CUTOFF
    )
    return close[0] if close else None
