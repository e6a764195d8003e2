"""The cassette: what a recording holds on disk, and how it is read and written.

A cassette is a folder, not one file::

    CASSETTE/
      cassette.json              format, version, upstream, the other exchanges
      tasks/0001-text-to-video.json   one file per submit: request, answer, polls
      outputs/<sha256>.mp4       the output files, by content

Why a folder: outputs are binary MP4s (megabytes each) that do not belong inside
JSON, and one file per task keeps a re-recording's diff to the tasks that
changed. Every JSON file is written with sorted keys and two-space indents, so
``git diff`` shows recordings line by line. ``FORMAT_VERSION`` changes whenever
a reader of the old version would misread the new one.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ....contracts.errors import WavespeedMockError

__all__ = [
    "CASSETTE_FORMAT",
    "FORMAT_VERSION",
    "Cassette",
    "CassetteError",
    "Exchange",
    "OutputFile",
    "RecordedTask",
]

CASSETTE_FORMAT = "wavespeed-mock-cassette"
FORMAT_VERSION = 1
INDEX = "cassette.json"
_SAFE_NAME = re.compile(r"[^a-z0-9]+")
_OUTPUT_NAME = re.compile(r"^[0-9a-f]{64}\.[a-z0-9]{1,5}$")


class CassetteError(WavespeedMockError, ValueError):
    """A cassette that cannot be read: missing, of another format, or broken."""


@dataclass
class Exchange:
    """One request and its answer, as stored (already redacted)."""

    method: str
    path: str
    status: int
    body: Any = None
    """The answer's JSON body (None for a non-JSON answer)."""
    request_body: Any = None
    query: dict[str, str] = field(default_factory=dict)
    t: float = 0.0
    """Seconds after the task's submit was answered (0 for the submit itself)."""
    files: list[OutputFile] = field(default_factory=list)
    """The output files of ``body.data.outputs``, index by index."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "t": round(self.t, 3),
            "request": {"method": self.method, "path": self.path},
            "response": {"status": self.status, "body": self.body},
        }
        if self.query:
            out["request"]["query"] = self.query
        if self.request_body is not None:
            out["request"]["body"] = self.request_body
        if self.files:
            out["files"] = [f.to_json() for f in self.files]
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Exchange:
        request, response = raw["request"], raw["response"]
        return cls(
            method=str(request["method"]),
            path=str(request["path"]),
            status=int(response["status"]),
            body=response.get("body"),
            request_body=request.get("body"),
            query=dict(request.get("query") or {}),
            t=float(raw.get("t", 0.0)),
            files=[OutputFile.from_json(f) for f in raw.get("files", [])],
        )

    @property
    def data(self) -> dict[str, Any]:
        """The prediction in the answer (``body.data``), or ``{}``."""
        body = self.body
        data = body.get("data") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class OutputFile:
    """One output of a task: where upstream had it, and the stored copy."""

    url: str
    """The upstream URL without its query string (it may hold a signature)."""
    name: str | None = None
    """``<sha256>.<ext>`` under ``outputs/``; None when it was not stored."""
    size: int = 0
    error: str | None = None
    """Why it was not stored (too large, unreachable)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"url": self.url}
        if self.name is not None:
            out["file"] = f"outputs/{self.name}"
            out["bytes"] = self.size
        if self.error is not None:
            out["error"] = self.error
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> OutputFile:
        file = raw.get("file")
        name = str(file).removeprefix("outputs/") if file else None
        if name is not None and not _OUTPUT_NAME.match(name):
            raise CassetteError(
                f"output file name {file!r} is not outputs/<sha256>.<ext>"
            )
        return cls(
            url=str(raw["url"]),
            name=name,
            size=int(raw.get("bytes", 0)),
            error=raw.get("error"),
        )


@dataclass
class RecordedTask:
    """One submit and everything its task answered, in order."""

    file: str
    """The task's file name under ``tasks/``."""
    model: str
    submit: Exchange
    polls: list[Exchange] = field(default_factory=list)
    task_id: str | None = None
    """The id upstream gave it (None when the submit was refused)."""
    contract_violations: list[dict[str, str]] = field(default_factory=list)
    image_sha256: str | None = None
    """The SHA-256 of the submit's image, so a replay can match an image by its
    content when its URL differs (an upload's URL differs on every run)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": CASSETTE_FORMAT,
            "version": FORMAT_VERSION,
            "model": self.model,
            "task_id": self.task_id,
            "submit": self.submit.to_json(),
            "polls": [p.to_json() for p in self.polls],
            "contract_violations": self.contract_violations,
        }
        if self.image_sha256 is not None:
            out["image_sha256"] = self.image_sha256
        return out

    @classmethod
    def from_json(cls, file: str, raw: Mapping[str, Any]) -> RecordedTask:
        _check_version(raw, f"tasks/{file}")
        return cls(
            file=file,
            model=str(raw["model"]),
            submit=Exchange.from_json(raw["submit"]),
            polls=[Exchange.from_json(p) for p in raw.get("polls", [])],
            task_id=raw.get("task_id"),
            contract_violations=list(raw.get("contract_violations", [])),
            image_sha256=raw.get("image_sha256"),
        )

    @property
    def statuses(self) -> list[str]:
        """The statuses the task went through, in order, repeats folded."""
        seen: list[str] = []
        for exchange in (self.submit, *self.polls):
            status = exchange.data.get("status")
            if isinstance(status, str) and (not seen or seen[-1] != status):
                seen.append(status)
        return seen


class Cassette:
    """A cassette folder: its tasks, its other exchanges, its output files.

    Example:
        >>> cassette = Cassette.load(Path("tests/cassettes/run"))
        >>> [task.statuses for task in cassette.tasks]
    """

    def __init__(self, root: Path, *, upstream: str | None = None) -> None:
        self.root = Path(root)
        self.upstream = upstream
        self.tasks: list[RecordedTask] = []
        self.exchanges: list[Exchange] = []
        self.contract_violations: list[dict[str, str]] = []

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def tasks_dir(self) -> Path:
        return self.root / "tasks"

    @classmethod
    def exists(cls, root: Path) -> bool:
        return (Path(root) / INDEX).is_file()

    @classmethod
    def load(cls, root: Path) -> Cassette:
        """Read a cassette folder (or its ``cassette.json``).

        Raises:
            CassetteError: no cassette there, another format, or a newer version.
        """
        root = Path(root)
        if root.name == INDEX and root.is_file():
            root = root.parent
        index_path = root / INDEX
        if not index_path.is_file():
            raise CassetteError(
                f"No cassette at {str(root)!r}: {INDEX} is missing. Record one with "
                "'wavespeed-mock serve --record PATH --upstream URL' (or "
                "record_mode='once' in the pytest marker)."
            )
        index = _read_json(index_path)
        _check_version(index, INDEX)
        cassette = cls(root, upstream=index.get("upstream"))
        cassette.exchanges = [Exchange.from_json(e) for e in index.get("exchanges", [])]
        cassette.contract_violations = list(index.get("contract_violations", []))
        if cassette.tasks_dir.is_dir():
            for path in sorted(cassette.tasks_dir.glob("*.json")):
                cassette.tasks.append(
                    RecordedTask.from_json(path.name, _read_json(path))
                )
        return cassette

    def next_task_file(self, model: str) -> str:
        tail = _SAFE_NAME.sub("-", model.rsplit("/", 1)[-1].lower()).strip("-")
        return f"{len(self.tasks) + 1:04d}-{tail or 'task'}.json"

    def save_task(self, task: RecordedTask) -> None:
        """Write one task's file (atomically: a reader never sees half of it)."""
        _write_json(self.tasks_dir / task.file, task.to_json())

    def save_index(self) -> None:
        _write_json(
            self.root / INDEX,
            {
                "format": CASSETTE_FORMAT,
                "version": FORMAT_VERSION,
                "upstream": self.upstream,
                "exchanges": [e.to_json() for e in self.exchanges],
                "contract_violations": self.contract_violations,
            },
        )

    def output_path(self, name: str) -> Path | None:
        """The stored output ``name`` (``<sha256>.<ext>``), or None."""
        if not _OUTPUT_NAME.match(name):
            return None
        path = self.outputs_dir / name
        return path if path.is_file() else None

    def all_violations(self) -> Iterator[tuple[str, dict[str, str]]]:
        """Every listed contract violation with the file that lists it."""
        for violation in self.contract_violations:
            yield INDEX, violation
        for task in self.tasks:
            for violation in task.contract_violations:
                yield f"tasks/{task.file}", violation


def _check_version(raw: Mapping[str, Any], where: str) -> None:
    if raw.get("format") != CASSETTE_FORMAT:
        raise CassetteError(
            f"{where} is not a wavespeed-mock cassette (format {raw.get('format')!r}, "
            f"expected {CASSETTE_FORMAT!r})"
        )
    version = raw.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CassetteError(
            f"{where} has cassette format version {version!r}; this wavespeed-mock "
            f"reads versions up to {FORMAT_VERSION}. Upgrade wavespeed-mock."
        )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CassetteError(f"cannot read {str(path)!r}: {exc}") from None


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
