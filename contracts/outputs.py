"""What one run of a model makes: its output plan, from the request and the entry.

A catalogue entry states how its model's output follows from the request
(``x-mock.output``, see docs/catalogue.md); :func:`plan_outputs` applies it to one
body. The conventional request properties drive the plan where the entry says
nothing more: ``size`` ("W*H"), ``width``/``height``, ``aspect_ratio`` with
``resolution``, ``duration``, ``num_images`` and ``output_format``, each read from
the body or else from the property's ``default``. Pure: no file is touched.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KINDS",
    "MAX_COUNT",
    "OutputPlan",
    "OutputRule",
    "kind_for_type",
    "plan_inputs",
    "plan_json",
    "plan_outputs",
    "shared_plan",
]

KINDS = ("image", "video", "audio", "text", "file")
"""The kinds of output the mock can make."""
DEFAULT_FORMATS = {
    "image": "png",
    "video": "mp4",
    "audio": "mp3",
    "text": "txt",
    "file": "bin",
}
"""The format of a kind when neither the entry nor the request names one. [inferred]"""
FORMAT_ALIASES = {"jpg": "jpeg", "tif": "tiff", "m4a": "aac"}
MEDIA_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "mp4": "video/mp4",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
    "bin": "application/octet-stream",
}
SUFFIXES = {"jpeg": "jpg", "tiff": "tif"}
MAX_COUNT = 16
"""At most this many outputs per run, whatever the request asks. [inferred]"""
MAX_SIDE = 4096
"""Outputs are at most this many pixels on a side (a 4K image is 4096). [inferred]"""
MAX_DURATION_S = 120.0
"""Audio and video outputs are at most this long. [inferred]"""
DEFAULT_SIZES = {"image": (1024, 1024), "video": (1280, 720)}
"""The output size of a kind when nothing says one. [inferred]"""
DEFAULT_DURATIONS = {"video": 5.0, "audio": 10.0}
"""The output length of a kind when nothing says one. [inferred]"""
SPEECH_CHARS_PER_S = 15.0
"""Speech is about 15 characters a second: a TTS output's length follows its
text. [inferred]"""
_RESOLUTIONS = {
    "360p": 360,
    "480p": 480,
    "540p": 540,
    "580p": 580,
    "720p": 720,
    "768p": 768,
    "1080p": 1080,
    "1440p": 1440,
    "2160p": 2160,
    "2k": 2048,
    "4k": 4096,
    "1k": 1024,
    "1.5k": 1536,
    "0.5k": 512,
}
_TASK_WORDS = (
    ("speech", "audio"),
    ("tts", "audio"),
    ("music", "audio"),
    ("audio", "audio"),
    ("sound", "audio"),
    ("voice", "audio"),
    ("video", "video"),
    ("lipsync", "video"),
    ("avatar", "video"),
    ("talk", "video"),
    ("animate", "video"),
    ("image", "image"),
    ("edit", "image"),
    ("upscal", "image"),
    ("background", "image"),
    ("photo", "image"),
    ("llm", "text"),
    ("text", "text"),
    ("chat", "text"),
    ("3d", "file"),
)


@dataclass(frozen=True)
class OutputRule:
    """An entry's ``x-mock.output``: how its outputs follow from a request."""

    kind: str
    format: str | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    frames: int | None = None
    """A fixed frame count (Ovi's 121), which then sets the video's length."""
    fps: int = 24
    audio: bool | str = False
    """A sound track: always, never, or the name of the boolean property that
    switches it on."""
    count: int = 1
    inline: bool = False
    size_from: str | None = None
    """``image``: the output takes the input image's size; ``ovi-image``: Ovi's
    rule for it."""
    scale: str | None = None
    params: Mapping[str, str] | None = None

    @classmethod
    def from_entry(cls, output: Mapping[str, Any] | None, type_: str) -> OutputRule:
        output = dict(output or {})
        kind = str(output.pop("kind", "") or kind_for_type(type_))
        known = set(cls.__dataclass_fields__)
        return cls(kind=kind, **{k: v for k, v in output.items() if k in known})

    def param(self, name: str) -> str:
        """The model's name for a conventional property."""
        return (self.params or {}).get(name, name)


@dataclass(frozen=True, slots=True)
class OutputPlan:
    """What one run makes: ``count`` files of ``kind`` in ``format``."""

    kind: str
    format: str
    count: int = 1
    width: int | None = None
    """None: the engine takes the size from the input image (``size_from``)."""
    height: int | None = None
    duration_s: float | None = None
    fps: int = 24
    frames: int | None = None
    audio: bool = False
    inline: bool = False
    size_from: str | None = None
    scale: float | None = None
    """An upscaler's factor on the input's size, when ``size_from`` is ``image``."""
    image_field: str | None = None
    """The request property the input image (the first frame) comes from."""
    speech: bool = False
    """A sound that is all speech (text-to-speech): its text is spoken."""
    text_field: str = "prompt"
    """The request property whose text the output derives from."""
    urls: tuple[str, ...] = ()
    """The outputs are these URLs, not files the mock makes (a test's custom
    outputs)."""

    @property
    def suffix(self) -> str:
        """The file name's extension, with its dot."""
        return "." + SUFFIXES.get(self.format, self.format)

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES.get(self.format, "application/octet-stream")

    @property
    def frame_count(self) -> int:
        """A video's frames: the fixed count, else its length at its rate."""
        if self.frames:
            return self.frames
        return max(1, round((self.duration_s or 0.0) * self.fps))

    def names(self, prediction_id: str) -> list[str]:
        """The output files' names: ``<id>.<ext>``, then ``<id>-1.<ext>``, ..."""
        return [
            f"{prediction_id}{'' if i == 0 else f'-{i}'}{self.suffix}"
            for i in range(self.count)
        ]

    def as_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (``urls`` a list)."""
        values = {k: getattr(self, k) for k in self.__dataclass_fields__}
        values["urls"] = list(self.urls)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> OutputPlan:
        """The plan of :meth:`as_dict`'s data; unknown keys are ignored."""
        known = set(cls.__dataclass_fields__)
        fields = {k: v for k, v in values.items() if k in known}
        fields["urls"] = tuple(fields.get("urls") or ())
        return shared_plan(cls(**fields))


@functools.lru_cache(maxsize=1024)
def plan_json(plan: OutputPlan) -> str:
    """The plan as compact JSON without the fields at their defaults, which
    :meth:`OutputPlan.from_dict` restores; once per distinct plan (every stored
    row holds its plan; a suite makes a handful of distinct ones). The defaults
    left out are bytes every commit would write: see docs/performance.md."""
    values = {
        name: value
        for name, value in plan.as_dict().items()
        if value != _PLAN_DEFAULTS.get(name, _NO_DEFAULT)
    }
    return json.dumps(values, separators=(",", ":"))


_NO_DEFAULT = object()
_PLAN_DEFAULTS: dict[str, Any] = {
    f.name: f.default
    for f in dataclasses.fields(OutputPlan)
    if f.default is not dataclasses.MISSING
}
_PLAN_DEFAULTS["urls"] = []  # as as_dict writes it


@functools.lru_cache(maxsize=1024)
def shared_plan(plan: OutputPlan) -> OutputPlan:
    """One instance for equal plans: stored predictions share a few objects
    (a suite's tasks make a handful of distinct plans), not one each."""
    return plan


def kind_for_type(type_: str) -> str:
    """The output kind a category or model id implies (``text-to-image``: image).

    The words after the last ``to`` win (``image-to-video`` is a video); else
    the first task word found.
    """
    text = type_.lower()
    tail = text.rsplit("to-", 1)[-1] if "to-" in text else text
    for source in (tail, text):
        for word, kind in _TASK_WORDS:
            if word in source:
                return kind
    return "file"


_PLAN_PARAMS = (
    "output_format",
    "num_images",
    "size",
    "width",
    "height",
    "aspect_ratio",
    "resolution",
    "duration",
)
"""The conventional properties :func:`plan_outputs` reads (through
:meth:`OutputRule.param`), besides the rule's ``scale`` and ``audio`` names."""


def plan_inputs(rule: OutputRule, body: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """What of ``body`` a plan depends on, as a hashable key (a memo's), or None
    when it cannot be one: a value is unhashable, or the plan reads the text's
    length (speech, whose length follows the text)."""
    if rule.kind == "audio" and rule.duration_s is None:
        return None
    names = [rule.param(n) for n in _PLAN_PARAMS]
    names += [rule.param(n) for n in (rule.scale, rule.audio) if isinstance(n, str)]
    # The type is part of the key: 1, 1.0 and True are equal keys, not equal values.
    key = tuple((k, type(body[k]), body[k]) for k in names if k in body)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def plan_outputs(
    rule: OutputRule,
    schema: Mapping[str, Any],
    body: Mapping[str, Any],
    *,
    image_field: str | None = None,
    speech: bool = False,
    text_field: str = "prompt",
) -> OutputPlan:
    """The plan of one run of a model with ``rule`` and request ``schema``.

    ``image_field``, ``speech`` (an audio model that speaks) and
    ``text_field`` are the model's, passed through to the plan."""
    props: Mapping[str, Any] = schema.get("properties", {}) or {}

    def value(name: str) -> Any:
        key = rule.param(name)
        if key in body:
            return body[key]
        spec = props.get(key)
        return spec.get("default") if isinstance(spec, dict) else None

    kind = rule.kind if rule.kind in KINDS else "file"
    fmt = _format(
        value("output_format") if rule.param("output_format") in props else None
    )
    fmt = fmt or _format(rule.format) or DEFAULT_FORMATS[kind]
    count = _int(value("num_images")) or rule.count
    count = max(1, min(MAX_COUNT, count))
    width = height = None
    if kind in ("image", "video"):
        width, height = _size(rule, value, kind)
    duration = None
    if kind in ("video", "audio"):
        duration = _duration(rule, value, body, props, kind)
    audio = rule.audio if isinstance(rule.audio, bool) else bool(value(rule.audio))
    scale = _scale(value(rule.scale)) if rule.scale else None
    return OutputPlan(
        kind=kind,
        format=fmt,
        count=count if kind != "text" else 1,
        width=width,
        height=height,
        duration_s=round(duration, 6) if duration is not None else None,
        fps=int(rule.fps),
        frames=rule.frames,
        audio=audio and kind == "video",
        inline=rule.inline,
        size_from=rule.size_from,
        scale=scale,
        image_field=image_field,
        speech=speech and kind == "audio",
        text_field=text_field,
    )


def _format(raw: Any) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = raw.strip().lower().lstrip(".")
    return (
        FORMAT_ALIASES.get(text, text)
        if text in MEDIA_TYPES or text in FORMAT_ALIASES
        else None
    )


def _int(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)) and math.isfinite(raw):
        return int(raw)
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    return None


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return float(raw) if math.isfinite(raw) else None
    if isinstance(raw, str):
        found = re.match(r"\s*(\d+(?:\.\d+)?)\s*s?\s*$", raw)
        return float(found.group(1)) if found else None
    return None


def _even(n: float) -> int:
    return max(16, min(MAX_SIDE, round(n / 2) * 2))


def _size(rule: OutputRule, value: Any, kind: str) -> tuple[int | None, int | None]:
    size = value("size")
    if isinstance(size, str):
        found = re.match(r"\s*(\d+)\s*[*xX\u00d7]\s*(\d+)\s*$", size)
        if found:
            return _even(int(found.group(1))), _even(int(found.group(2)))
    width, height = _int(value("width")), _int(value("height"))
    if width and height:
        return _even(width), _even(height)
    ratio, resolution = value("aspect_ratio"), value("resolution")
    if isinstance(ratio, str) or isinstance(resolution, str):
        return _from_ratio(ratio, resolution, rule, kind)
    target = value(rule.scale) if rule.scale else None
    if isinstance(target, str) and target.strip().lower() in _RESOLUTIONS:
        return _from_ratio(None, target, rule, kind)  # an upscaler's target
    if rule.size_from:
        return None, None
    if rule.width and rule.height:
        return rule.width, rule.height
    return DEFAULT_SIZES[kind]


def _from_ratio(
    ratio: Any, resolution: Any, rule: OutputRule, kind: str
) -> tuple[int | None, int | None]:
    w_part, h_part = 1.0, 1.0
    found = re.match(r"\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$", str(ratio or ""))
    if found and float(found.group(1)) > 0 and float(found.group(2)) > 0:
        w_part, h_part = float(found.group(1)), float(found.group(2))
    elif rule.width and rule.height:
        w_part, h_part = float(rule.width), float(rule.height)
    elif kind == "video":
        w_part, h_part = 16.0, 9.0
    text = resolution.strip().lower() if isinstance(resolution, str) else ""
    if text.endswith("k") and text in _RESOLUTIONS:
        # "1k", "2k", "4k" name the long side (a 2K 16:9 image is 2048x1152).
        long = float(_RESOLUTIONS[text])
        if w_part >= h_part:
            return _even(long), _even(long * h_part / w_part)
        return _even(long * w_part / h_part), _even(long)
    if text in _RESOLUTIONS:
        short = float(_RESOLUTIONS[text])
    elif rule.width and rule.height:
        short = float(min(rule.width, rule.height))
    else:
        short = float(min(DEFAULT_SIZES[kind]))
    long = min(float(MAX_SIDE), short * max(w_part, h_part) / min(w_part, h_part))
    short = long * min(w_part, h_part) / max(w_part, h_part)
    if w_part >= h_part:
        return _even(long), _even(short)
    return _even(short), _even(long)


def _duration(
    rule: OutputRule,
    value: Any,
    body: Mapping[str, Any],
    props: Mapping[str, Any],
    kind: str,
) -> float:
    seconds = _number(value("duration"))
    if seconds is None and kind == "audio" and rule.duration_s is None:
        text = next(
            (
                body[k]
                for k in ("text", "prompt", "input")
                if isinstance(body.get(k), str)
            ),
            None,
        )
        if text is not None and any(k in props for k in ("text", "voice_id", "voice")):
            seconds = len(text) / SPEECH_CHARS_PER_S
    if seconds is None:
        seconds = (
            rule.duration_s if rule.duration_s is not None else DEFAULT_DURATIONS[kind]
        )
    return max(0.5, min(MAX_DURATION_S, seconds))


def _scale(raw: Any) -> float | None:
    number = _number(raw)
    if number is not None and 0 < number <= 8:
        return number
    if isinstance(raw, str) and raw.strip().lower() in _RESOLUTIONS:
        return None  # a target resolution: the size rule has it
    return None
