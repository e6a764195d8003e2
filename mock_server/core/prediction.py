"""A prediction as the server keeps it, and its view in the API's answers.

The row records what happened (submitted, render started, file written, failure)
and the schedule its timing profile gave it. The status a client sees is not
stored: :func:`~.lifecycle.status_at` works it out from the row and the clock.
"""

from __future__ import annotations

import functools
import re
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ...contracts import OutputPlan, terminal_statuses
from .lifecycle import status_at

__all__ = [
    "MUTABLE_FIELDS",
    "TIMESTAMP_DIGITS",
    "Prediction",
    "format_timestamp",
    "parse_timestamp",
    "to_api",
]


@dataclass
class Prediction:
    id: str
    model: str
    input: dict[str, Any]
    seed_requested: int
    seed: int
    created_at: float
    profile: str
    start_at: float
    """Clock time the schedule moves it to ``processing``."""
    done_at: float
    """Clock time the schedule allows a terminal status."""
    polls_needed: int = 0
    follows_engine: bool = False
    key_id: str = ""
    """The hash of the API key that made it (``core.keys.key_id``); never the key."""
    key_hint: str = ""
    """The key masked for display (``core.keys.mask_key``)."""
    webhook: str | None = None
    scenario: str | None = None
    image_digest: str | None = None
    """SHA-256 of a ``data:`` image, kept at ``inputs/<digest>.img`` for a restart."""
    flag_nsfw: bool = False
    """A scenario flags the outputs as NSFW whatever the engine says."""
    plan: OutputPlan | None = None
    """What the run makes, decided once at submit (stored as its dict); None in
    rows of older versions (an Ovi clip)."""
    # -- what happens later (MUTABLE_FIELDS) --
    polls: int = 0
    render_started_at: float | None = None
    rendered_at: float | None = None
    """When the output file came to exist (the clock's time)."""
    inference_ms: int = 0
    nsfw: list[bool] = field(default_factory=list)
    failure_code: int = 0
    failure_message: str = ""
    forced_status: str | None = None
    """A terminal status other than completed/failed (scenarios), or ``deleted``."""
    output_file: str | None = None
    """The clip's file when it is not at ``outputs/<id>.mp4`` (a cached clip)."""
    notified_at: float | None = None
    """When the notifiers (the webhook) were done with it: delivered, or given
    up after the retries. None while a webhook is owed: a restart, even after
    ``kill -9``, sends it (at least once)."""
    device: str | None = None
    """The device its render ran on, as the engine named it (``cuda:0``); None
    for an engine that names none (the synthetic one)."""

    @property
    def outcome_known(self) -> bool:
        """The render finished, failed, or a scenario decided the outcome."""
        return (
            self.rendered_at is not None
            or self.failure_code != 0
            or self.forced_status is not None
        )

    @property
    def terminal_status(self) -> str:
        if self.forced_status is not None:
            return self.forced_status
        return "failed" if self.failure_code else "completed"

    @property
    def output_plan(self) -> OutputPlan:
        """The plan as an object (an Ovi clip for rows without one)."""
        return self.plan or _CLIP_PLAN

    @property
    def output_name(self) -> str:
        """The first output's file name (``<id>.mp4`` for a clip)."""
        return f"{self.id}{self.output_plan.suffix}"

    @property
    def output_names(self) -> list[str]:
        """Every output file's name, in order."""
        return self.output_plan.names(self.id)


_CLIP_PLAN = OutputPlan(kind="video", format="mp4", audio=True, frames=121)


MUTABLE_FIELDS = (
    "polls",
    "render_started_at",
    "rendered_at",
    "inference_ms",
    "nsfw",
    "failure_code",
    "failure_message",
    "forced_status",
    "output_file",
    "notified_at",
    "device",
)
"""The fields that change after a prediction is stored; the store writes only these."""


TIMESTAMP_DIGITS = (0, 2, 3, 9)
"""The fractional digits real ``created_at`` values carry (Go's RFC3339Nano drops
trailing zeros): the mock answers 3 unless a scenario asks for another style."""


# Pure, and asked for the same task's time on every poll of it.
@functools.lru_cache(maxsize=4096)
def format_timestamp(seconds: float, digits: int = 3, *, nanos_tail: int = 1) -> str:
    """RFC 3339 UTC with ``digits`` (0, 2, 3 or 9) fractional digits.

    The text never names a moment later than the one it stands for: round to
    microseconds (as datetime does), then cut. Nine digits append ``nanos_tail``
    (1-999, chosen per prediction, never ending in 0) to the microseconds, as real bodies have
    nanosecond digits the mock's clock does not.
    """
    whole = int(seconds)
    micros = round((seconds - whole) * 1_000_000)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    if digits == 0:
        return text + "Z"
    if digits == 9:
        return text + f".{micros:06d}{nanos_tail:03d}Z"
    return text + f".{micros:06d}"[: digits + 1] + "Z"


_FRACTION = re.compile(r"(\.\d{1,6})\d*")
_LEAP_SECOND = re.compile(r"(T\d\d:\d\d:)60", re.IGNORECASE)


def parse_timestamp(text: str) -> float:
    """Unix seconds of an RFC 3339 (or ISO 8601) time a client sent.

    Takes what RFC 3339 allows and ``datetime`` does not: ``Z`` or ``z``, any
    number of fractional digits (cut to microseconds), and a leap second (``:60``,
    read as the next second). No zone means UTC.

    Raises:
        ValueError: ``text`` is no such time.
    """
    normal = _FRACTION.sub(
        r"\1", text.strip().replace("Z", "+00:00").replace("z", "+00:00"), 1
    )
    leap = _LEAP_SECOND.search(normal) is not None
    if leap:
        normal = _LEAP_SECOND.sub(r"\g<1>59", normal, 1)
    try:
        moment = datetime.fromisoformat(normal)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an RFC 3339 time: {exc}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp() + (1.0 if leap else 0.0)


def to_api(
    p: Prediction,
    now: float,
    base_url: str,
    *,
    accepted: bool = False,
    timestamp_digits: int = 3,
) -> dict[str, Any]:
    """The prediction object of the envelope (and of a webhook delivery).

    ``accepted`` gives the answer to the submit itself, which describes the task
    as just accepted (``created`` or ``processing``), never finished, as the API
    does, even when a cached clip is already there.
    """
    terminal_set = terminal_statuses()
    status = status_at(p, now)
    if accepted and status in terminal_set:
        status = "processing" if now >= p.start_at else "created"
    completed = status == "completed"
    terminal = status in terminal_set
    nsfw = [True] * max(1, len(p.nsfw)) if p.flag_nsfw else list(p.nsfw)
    data: dict[str, Any] = {
        "id": p.id,
        "model": p.model,
        "input": p.input,
        "outputs": (
            list(p.output_plan.urls)
            or [f"{base_url}/outputs/{name}" for name in p.output_names]
            if completed
            else []
        ),
        "urls": {"get": f"{base_url}/api/v3/predictions/{p.id}/result"},
        "has_nsfw_contents": nsfw if completed else [],
        "status": status,
        "created_at": format_timestamp(
            p.created_at, timestamp_digits, nanos_tail=_nanos_tail(p.id)
        ),
        "error": p.failure_message if terminal and not completed else "",
        "executionTime": p.inference_ms if terminal else 0,
        "timings": {"inference": p.inference_ms if terminal else 0},
    }
    if terminal and p.failure_code:
        data["code"] = p.failure_code
    return data


def _nanos_tail(prediction_id: str) -> int:
    """Three digits past the microseconds, fixed per prediction, the last never
    0 (Go's RFC3339Nano would drop it and show 8 digits)."""
    crc = zlib.crc32(prediction_id.encode())
    return (crc % 100) * 10 + (crc // 100) % 9 + 1
