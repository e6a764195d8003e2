"""Replay: answering submits and polls from a cassette.

A submit is matched to a recorded one by its model and body (top-level fields
named in ``ignore`` left out, e.g. ``seed``). A matched submit keeps its recorded
task id (a fresh one when that id is already being replayed, so a recording can
be replayed any number of times in one session), and its polls walk the recorded sequence: by time (the recorded offsets divided
by ``speed``, on the server's clock, so a virtual clock drives it too) or by
poll count (the n-th poll gets the n-th recorded answer). The sequence never
goes back and ends on its last recorded answer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...core.clock import ServerClock
from ...errors import ApiError
from .answers import rewrite_prediction
from .cassette import Cassette, Exchange, RecordedTask
from .images import image_digest

__all__ = [
    "REPLAY_BY",
    "REPLAY_MISS",
    "REPLAY_MISS_CODE",
    "CassettePlayer",
    "PlayedAnswer",
]

REPLAY_BY = ("time", "polls")
REPLAY_MISS = ("synthetic", "error")
REPLAY_MISS_CODE = "replay_miss"


@dataclass(frozen=True)
class PlayedAnswer:
    status: int
    body: Any


@dataclass
class _Playing:
    task: RecordedTask
    started: float
    polls: int = 0


class CassettePlayer:
    """Answers recorded tasks from ``cassette``."""

    def __init__(
        self,
        cassette: Cassette,
        *,
        clock: ServerClock,
        speed: float = 1.0,
        by: str = "time",
        ignore: tuple[str, ...] = (),
        local_images: Callable[[str], bytes | None] | None = None,
    ) -> None:
        if by not in REPLAY_BY:
            raise ValueError(f"replay_by must be one of {REPLAY_BY}, got {by!r}")
        if not speed > 0:
            raise ValueError(f"replay_speed must be above 0, got {speed!r}")
        self.cassette = cassette
        self.clock = clock
        self.speed = speed
        self.by = by
        self.ignore = frozenset(ignore)
        self.local_images = local_images
        """Reads a submit's image (a data: URI, an upload to this mock), to
        match it by content against a recording's ``image_sha256``."""
        self._playing: dict[str, _Playing] = {}
        self._uses: dict[str, int] = {}

    def reset(self) -> None:
        """Forget the tasks replayed so far; recordings match from the first again."""
        self._playing.clear()
        self._uses.clear()

    def _key(self, model: str, body: Any) -> str:
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in self.ignore}
        return model + "\n" + json.dumps(body, sort_keys=True, separators=(",", ":"))

    def submit(self, model: str, body: Any, *, base_url: str) -> PlayedAnswer | None:
        """The recorded answer to this submit, or None when nothing matches."""
        key = self._key(model, body)
        candidates = [
            t
            for t in self.cassette.tasks
            if self._key(t.model, t.submit.request_body) == key
        ]
        if not candidates:
            key, candidates = self._by_image_content(model, body)
        if not candidates:
            return None
        use = self._uses.get(key, 0)
        self._uses[key] = use + 1
        task = candidates[min(use, len(candidates) - 1)]
        submit = task.submit
        if submit.status != 200 or task.task_id is None:
            return PlayedAnswer(submit.status, submit.body)
        # The recorded id, so a replay reads as the recording did (errors that
        # name the task included); a fresh one while that id is already playing.
        task_id = task.task_id
        if task_id in self._playing:
            task_id = uuid.uuid4().hex
        self._playing[task_id] = _Playing(task, self.clock.now())
        return self._answer(submit, task_id, base_url)

    def _by_image_content(
        self, model: str, body: Any
    ) -> tuple[str, list[RecordedTask]]:
        """Recordings whose image has the same content as this submit's."""
        image = body.get("image") if isinstance(body, dict) else None
        if self.local_images is None or not isinstance(image, str):
            return "", []
        digest = image_digest(self.local_images, image)
        if digest is None:
            return "", []
        key = self._key(model, {**body, "image": f"sha256:{digest}"})
        return key, [
            t
            for t in self.cassette.tasks
            if t.image_sha256 is not None
            and isinstance(t.submit.request_body, dict)
            and self._key(
                t.model,
                {**t.submit.request_body, "image": f"sha256:{t.image_sha256}"},
            )
            == key
        ]

    def is_playing(self, task_id: str) -> bool:
        return task_id in self._playing

    def poll(self, task_id: str, *, base_url: str) -> PlayedAnswer:
        """The recorded answer for this poll of a replayed task."""
        playing = self._playing[task_id]
        polls = playing.task.polls
        if not polls:
            return self._answer(playing.task.submit, task_id, base_url)
        if self.by == "polls":
            exchange = polls[min(playing.polls, len(polls) - 1)]
        else:
            elapsed = (self.clock.now() - playing.started) * self.speed
            due = [p for p in polls if p.t <= elapsed]
            exchange = due[-1] if due else polls[0]
        playing.polls += 1
        return self._answer(exchange, task_id, base_url)

    def _answer(self, exchange: Exchange, task_id: str, base_url: str) -> PlayedAnswer:
        if exchange.status != 200:
            return PlayedAnswer(exchange.status, exchange.body)
        body = rewrite_prediction(
            exchange.body, base_url=base_url, files=exchange.files, task_id=task_id
        )
        return PlayedAnswer(200, body)

    def miss(self, model: str, body: Any, *, path: str) -> ApiError:
        """The 404 for a submit no recording matches, naming the closest one."""
        recorded = [t for t in self.cassette.tasks if t.model == model]
        where = f"cassette {str(self.cassette.root)!r}"
        if not recorded:
            held = sorted({t.model for t in self.cassette.tasks})
            closest = (
                f"It holds no submit of {model!r}; it holds: {', '.join(held)}."
                if held
                else "It holds no submits at all."
            )
        else:
            best = min(recorded, key=lambda t: len(self._differences(t, body)))
            differences = self._differences(best, body)
            closest = (
                f"The closest recorded request is tasks/{best.file}, which differs at "
                + "; ".join(differences[:5])
                + (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")
                + "."
            )
        return ApiError(
            404,
            f"Replay miss: no recorded request in {where} matches POST {path}. "
            f"{closest} Record it (record_mode 'new'), leave a field out of "
            "matching (--replay-ignore FIELD), or let misses reach the synthetic "
            "engine (--replay-miss synthetic).",
            error_code=REPLAY_MISS_CODE,
        )

    def _differences(self, task: RecordedTask, body: Any) -> list[str]:
        recorded = task.submit.request_body
        if not isinstance(recorded, dict) or not isinstance(body, dict):
            return [f"$ (recorded {_short(recorded)}, got {_short(body)})"]
        out = []
        for name in sorted((set(recorded) | set(body)) - self.ignore):
            if name not in body:
                out.append(f"$.{name} (recorded {_short(recorded[name])}, got nothing)")
            elif name not in recorded:
                out.append(f"$.{name} (not recorded, got {_short(body[name])})")
            elif recorded[name] != body[name]:
                out.append(
                    f"$.{name} (recorded {_short(recorded[name])}, "
                    f"got {_short(body[name])})"
                )
        return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
