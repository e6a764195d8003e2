"""Retention: which stored predictions go, and what a prune removed.

A prediction is pruned when it is older than ``max_age_s`` on the server clock
or when more than ``max_predictions`` are stored (the oldest go first). Both
rules look at the store from its oldest end and stop at the first prediction
they keep, so a prune costs what it removes, not what is stored. The service
(:meth:`~.service.MockService.prune`) removes the chosen predictions from memory
and the database and deletes their files; uploads expire and the render cache is
trimmed in the same pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..settings import Settings
from .prediction import Prediction

__all__ = ["PruneReport", "RetentionPolicy", "delete_files"]


@dataclass(frozen=True)
class RetentionPolicy:
    """How much the server keeps; 0 in a field keeps everything by that rule."""

    max_predictions: int = 0
    max_age_s: float = 0.0
    max_upload_age_s: float = 0.0
    max_cache_bytes: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            max_predictions=settings.max_predictions,
            max_age_s=settings.max_age_s,
            max_upload_age_s=settings.max_upload_age_s,
            max_cache_bytes=settings.max_cache_bytes,
        )

    def replace(self, **changes: Any) -> RetentionPolicy:
        return dataclasses.replace(self, **changes)

    def slack(self) -> int:
        """How far the count may run over before a prune is due (1% of the bound),
        so that a busy server removes predictions in batches, not one per submit."""
        return self.max_predictions // 100

    def victims(
        self, oldest_first: Iterable[Prediction], count: int, now: float
    ) -> list[Prediction]:
        """The predictions to remove, from a store listing ``count`` oldest first.

        Example:
            >>> policy = RetentionPolicy(max_predictions=2)
            >>> [p.id for p in policy.victims(rows, 3, now)]  # rows: a, b, c
            ['a']
        """
        excess = count - self.max_predictions if self.max_predictions > 0 else 0
        cutoff = now - self.max_age_s if self.max_age_s > 0 else None
        chosen: list[Prediction] = []
        for p in oldest_first:
            if len(chosen) < excess or (cutoff is not None and p.created_at < cutoff):
                chosen.append(p)
            else:
                break  # the store is in order of creation: the rest is younger
        return chosen


@dataclass
class PruneReport:
    """What one prune removed."""

    predictions: int = 0
    outputs: int = 0
    """Output files of pruned predictions."""
    inputs: int = 0
    """Kept ``data:`` images no stored prediction uses any more."""
    uploads: int = 0
    cache_files: int = 0
    cache_bytes: int = 0
    files: list[Path] = field(default_factory=list, repr=False)
    """Files still to delete (after the database commit)."""

    def as_json(self) -> dict[str, int]:
        return {
            "predictions": self.predictions,
            "outputs": self.outputs,
            "inputs": self.inputs,
            "uploads": self.uploads,
            "cache_files": self.cache_files,
            "cache_bytes": self.cache_bytes,
        }


def delete_files(paths: Iterable[Path]) -> int:
    """Delete what exists of ``paths``; how many were deleted. Blocking."""
    deleted = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            deleted += 1
    return deleted
