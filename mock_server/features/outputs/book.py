"""The rules that say what a model returns, and the choice for one submit.

A rule names a model, optionally fields the body must hold (equal values), the
outputs (files given as bytes, or URLs handed out as they are), and how many
tasks it serves (``times``; None: until cleared). The newest matching rule
wins. Files are checked against the model's output kind when the rule is set,
so a test cannot make an image model return an MP4 by mistake.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ....contracts import Catalogue
from ....contracts.outputs import FORMAT_ALIASES, MEDIA_TYPES
from ...core.components import ChosenOutputs
from ...errors import ApiError

__all__ = [
    "MAX_OUTPUT_BYTES",
    "MAX_RULES",
    "OutputBook",
    "OutputRule",
    "RuleStore",
    "SharedOutputBook",
]

MAX_OUTPUT_BYTES = 32 * 1024 * 1024
"""Bytes of files one rule may hold (all its outputs together)."""
MAX_RULES = 256
"""Rules in force at once."""
MAX_OUTPUTS = 16
_FULL = f"{MAX_RULES} output rules are in force; clear some first"
_KIND_OF_FORMAT = {
    fmt: next(
        (
            kind
            for kind in ("image", "video", "audio", "text")
            if media.startswith(kind)
        ),
        "file",
    )
    for fmt, media in MEDIA_TYPES.items()
}
_MAGIC = {
    "png": (b"\x89PNG",),
    "jpeg": (b"\xff\xd8",),
    "gif": (b"GIF8",),
    "webp": (b"RIFF",),
    "mp4": (),  # checked by its ftyp box below
    "mp3": (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"),
    "wav": (b"RIFF",),
    "flac": (b"fLaC",),
    "ogg": (b"OggS",),
}


@dataclass
class OutputRule:
    """One rule: for ``model`` (and ``match``), return these outputs."""

    id: int
    model: str
    match: dict[str, Any]
    files: tuple[tuple[bytes, str], ...]
    urls: tuple[str, ...]
    times: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "match": self.match,
            "outputs": [{"format": f, "bytes": len(d)} for d, f in self.files]
            + [{"url": u} for u in self.urls],
            "times_left": self.times,
        }

    def matches(self, model: str, body: Mapping[str, Any]) -> bool:
        return model == self.model and all(
            key in body and body[key] == value for key, value in self.match.items()
        )


class OutputBook:
    """The custom-output rules of one server."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._rules: list[OutputRule] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, body: Mapping[str, Any]) -> OutputRule:
        """Keep a rule from a control request (``control-outputs.request.json``).

        Raises:
            ApiError: as :meth:`checked`; 400 when ``MAX_RULES`` are in force.
        """
        rule = self.checked(body)
        with self._lock:
            if len(self._rules) >= MAX_RULES:
                raise ApiError(400, _FULL)
            rule.id = next(self._ids)
            self._rules.append(rule)
        return rule

    def checked(self, body: Mapping[str, Any]) -> OutputRule:
        """A rule from a control request, checked, not kept yet (its id 0).

        Raises:
            ApiError: 400 naming the field for an unknown model, a file that is
                not of the model's output kind, bad base64, or too much.
        """
        model_id = str(body.get("model", ""))
        spec = self.catalogue.find(model_id)
        if spec is None:
            hint = self.catalogue.nearest(model_id)
            raise ApiError(
                404,
                f"$.model: {model_id!r} is not a model this server serves"
                + (f"; did you mean {hint[0]!r}?" if hint else ""),
            )
        kind = spec.outputs_for({}).kind
        files: list[tuple[bytes, str]] = []
        urls: list[str] = []
        total = 0
        outputs = body.get("outputs") or []
        if not 1 <= len(outputs) <= MAX_OUTPUTS:
            raise ApiError(400, f"$.outputs: give 1 to {MAX_OUTPUTS} outputs")
        for index, item in enumerate(outputs):
            where = f"$.outputs[{index}]"
            if "url" in item:
                urls.append(str(item["url"]))
                continue
            data = _decode(item.get("base64"), where)
            fmt = str(item.get("format", "")).lower()
            fmt = FORMAT_ALIASES.get(fmt, fmt)
            if _KIND_OF_FORMAT.get(fmt) != kind:
                raise ApiError(
                    400,
                    f"{where}.format: {fmt!r} is not a {kind} format, and "
                    f"{model_id} returns {kind} outputs",
                )
            if not _looks_like(data, fmt):
                raise ApiError(
                    400, f"{where}.base64: the bytes are not a {fmt.upper()} file"
                )
            total += len(data)
            if total > MAX_OUTPUT_BYTES:
                raise ApiError(
                    413, f"{where}: the rule's files pass {MAX_OUTPUT_BYTES} bytes"
                )
            files.append((data, fmt))
        if files and urls:
            raise ApiError(400, "$.outputs: give files or URLs, not both")
        match = body.get("match") or {}
        times = body.get("times")
        return OutputRule(
            id=0,
            model=model_id,
            match=dict(match),
            files=tuple(files),
            urls=tuple(urls),
            times=int(times) if times is not None else None,
        )

    def choose(self, model: str, body: Mapping[str, Any]) -> ChosenOutputs | None:
        """The outputs the newest matching rule gives (counting one use)."""
        with self._lock:
            for rule in reversed(self._rules):
                if not rule.matches(model, body):
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                return ChosenOutputs(files=rule.files, urls=rule.urls, rule=rule.id)
        return None

    def state(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.as_json() for rule in self._rules]

    def reset(self) -> None:
        with self._lock:
            self._rules.clear()


def _decode(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{where}: give a url, or base64 and a format")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{where}.base64: not valid base64") from None


def _looks_like(data: bytes, fmt: str) -> bool:
    if fmt == "mp4":
        return data[4:8] == b"ftyp"
    if fmt == "txt":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    magic = _MAGIC.get(fmt)
    return not magic or any(data.startswith(m) for m in magic)


# -- shared by every process on one database ----------------------------------------

RULES_KEY = "shared:outputs"
"""The published value that says the rules changed (``PostgresStore.publish``)."""


class RuleStore(Protocol):
    """A store that keeps the rules for every process on it (``PostgresStore``)."""

    def rules_add(
        self, model: str, rule: str, files: list[bytes], times: int | None, limit: int
    ) -> int | None:
        """Keep a rule (its JSON without its files' bytes; ``times``: the uses it
        has, None for no bound); its id, or None when ``limit`` rules are in
        force."""
        ...

    def rules_take(
        self, model: str, wanted: Callable[[str], bool]
    ) -> tuple[bool, tuple[int, str, list[bytes]] | None]:
        """In one transaction: the newest rule of ``model`` whose JSON is
        ``wanted``, one use counted (the last one removes it); and whether any
        rule is in force at all."""
        ...

    def rules_list(self) -> list[tuple[int, str, int | None]]:
        """The rules in force, oldest first: id, JSON, uses left (None: no bound)."""
        ...

    def rules_clear(self) -> None: ...
    def publish(self, key: str, value: str) -> None: ...
    def follow(self, key: str, callback: Callable[[str], None]) -> None: ...


class SharedOutputBook(OutputBook):
    """The rules kept in a shared store (``--database``): a rule set through
    any process applies to a submit through any other, and ``times`` counts the
    uses of all of them.

    A submit asks the database only while rules may be in force: a change is
    published (:data:`RULES_KEY`), and every submit reads the published values
    first (``MockService.submit``: the shared clock's refresh), so a rule set
    before a submit is seen by it.
    """

    def __init__(self, catalogue: Catalogue, store: RuleStore) -> None:
        super().__init__(catalogue)
        self.store = store
        self._changes = 0  # published changes seen
        self._maybe_any = True
        store.follow(RULES_KEY, self._changed)

    def _changed(self, value: str) -> None:
        with self._lock:
            self._changes += 1
            self._maybe_any = True

    def add(self, body: Mapping[str, Any]) -> OutputRule:
        rule = self.checked(body)
        stored = self.store.rules_add(
            rule.model,
            json.dumps(_shown(rule)),
            [d for d, _ in rule.files],
            rule.times,
            MAX_RULES,
        )
        if stored is None:
            raise ApiError(400, _FULL)
        rule.id = stored
        self.store.publish(RULES_KEY, str(stored))
        return rule

    def choose(self, model: str, body: Mapping[str, Any]) -> ChosenOutputs | None:
        with self._lock:
            if not self._maybe_any:
                return None
            changes = self._changes

        def wanted(text: str) -> bool:
            return _rule_of(0, json.loads(text), []).matches(model, body)

        any_in_force, found = self.store.rules_take(model, wanted)
        if not any_in_force:
            with self._lock:
                if self._changes == changes:  # none published since the read
                    self._maybe_any = False
        if found is None:
            return None
        rule_id, text, files = found
        rule = _rule_of(rule_id, json.loads(text), files)
        return ChosenOutputs(files=rule.files, urls=rule.urls, rule=rule.id)

    def state(self) -> list[dict[str, Any]]:
        return [
            {"id": rule_id, **json.loads(text), "times_left": times_left}
            for rule_id, text, times_left in self.store.rules_list()
        ]

    def reset(self) -> None:
        self.store.rules_clear()
        self.store.publish(RULES_KEY, "cleared")


def _shown(rule: OutputRule) -> dict[str, Any]:
    """A rule as the shared store keeps it: its listing (``as_json``) without
    the id and the uses left, which the store's columns hold."""
    shown = rule.as_json()
    del shown["id"], shown["times_left"]
    return shown


def _rule_of(rule_id: int, shown: dict[str, Any], files: list[bytes]) -> OutputRule:
    """A kept rule again (``files``: its files' bytes, in order; none to match)."""
    formats = [o["format"] for o in shown["outputs"] if "format" in o]
    return OutputRule(
        id=rule_id,
        model=str(shown["model"]),
        match=dict(shown["match"]),
        files=tuple(zip(files, formats, strict=False)),
        urls=tuple(o["url"] for o in shown["outputs"] if "url" in o),
        times=None,  # the store's column: counted there
    )
