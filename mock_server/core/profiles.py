"""Timing profiles: how long a prediction stays ``created`` and ``processing``.

A profile is chosen per server (``--profile``) and can be changed at run time
through the control API; each prediction keeps the profile it was created under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...contracts.errors import WavespeedMockError

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILE_NAMES",
    "ProfileError",
    "TimingProfile",
    "parse_profile",
]

PROFILE_NAMES = ("instant", "fast", "realistic", "polls:N", "engine")
DEFAULT_PROFILE = "fast"
"""The profile of a server whose settings and engine name none."""


class ProfileError(WavespeedMockError, ValueError):
    pass


@dataclass(frozen=True)
class TimingProfile:
    """Scheduled times relative to submission, or a poll count, or the engine."""

    name: str
    queue_s: float = 0.0
    processing_s: float = 0.0
    polls: int = 0
    """Completed on this poll (polls:N); 0 when the profile is clock-driven."""
    follows_engine: bool = False
    """Statuses follow the engine's real progress (the engine profile)."""
    per_model: bool = False
    """Processing takes each model's typical time where its catalogue entry
    declares one (``x-mock.processing_s``), else ``processing_s``."""

    def processing_for(self, model_s: float | None) -> float:
        """The processing time of a task of a model typically taking ``model_s``."""
        return model_s if self.per_model and model_s is not None else self.processing_s

    @property
    def instant(self) -> bool:
        return self.name == "instant"


_PROFILES = {
    "instant": TimingProfile("instant"),
    # A fraction of a second queued, about two seconds processing.
    "fast": TimingProfile("fast", queue_s=0.3, processing_s=2.0),
    # Like the hosted models: each its catalogue entry's typical time (Ovi's:
    # upstream needs 83-118 s per clip on one H100); the queue share is a
    # guess. [inferred]
    "realistic": TimingProfile(
        "realistic", queue_s=6.0, processing_s=84.0, per_model=True
    ),
    "engine": TimingProfile("engine", follows_engine=True),
}


def parse_profile(text: str) -> TimingProfile:
    """``instant``, ``fast``, ``realistic``, ``engine`` or ``polls:N`` (N >= 1)."""
    name = text.strip().lower()
    if name in _PROFILES:
        return _PROFILES[name]
    match = re.fullmatch(r"polls:(\d{1,6})", name)
    if match and int(match.group(1)) >= 1:
        return TimingProfile(name, polls=int(match.group(1)))
    raise ProfileError(
        f"Unknown timing profile {text!r}; expected one of {', '.join(PROFILE_NAMES)} "
        "(polls:N with N >= 1)."
    )
