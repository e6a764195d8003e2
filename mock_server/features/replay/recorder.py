"""Recording: exchanges into a cassette, redacted and checked as they are written.

Each submit starts a task file; each poll of that task is appended with its time
relative to the submit's answer, so a replay can play the sequence back by time
or by poll count. Every write is a whole file replaced atomically: a recording
cut off at any moment is a readable cassette of what had been answered so far.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from ...core.clock import ServerClock
from ...errors import ApiError
from .cassette import Cassette, Exchange, OutputFile, RecordedTask
from .redact import Redactor
from .upstream import Download
from .violations import exchange_violations

__all__ = ["RECORD_CAP_CODE", "CassetteRecorder"]

RECORD_CAP_CODE = "record_max_submits"
_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,5})$")


class CassetteRecorder:
    """Writes what the proxy saw into ``cassette``."""

    def __init__(
        self,
        cassette: Cassette,
        *,
        clock: ServerClock,
        redactor: Redactor | None = None,
        max_submits: int | None = None,
    ) -> None:
        self.cassette = cassette
        self.clock = clock
        self.redactor = redactor or Redactor()
        self.max_submits = max_submits
        self.submits = 0
        """Submits forwarded by this server (the spend cap counts these)."""
        self._tasks: dict[str, tuple[RecordedTask, float]] = {}
        if not Cassette.exists(cassette.root):
            cassette.save_index()

    def admit_submit(self) -> None:
        """Refuse a submit past the spend cap (403, nothing forwarded)."""
        if self.max_submits is not None and self.submits >= self.max_submits:
            raise ApiError(
                403,
                f"Recording refused this submit: the spend cap of {self.max_submits} "
                "submits (--record-max-submits) is reached. Nothing was sent "
                "upstream; restart the recording with a higher cap to go on.",
                error_code=RECORD_CAP_CODE,
            )
        self.submits += 1

    def record_submit(
        self, model: str, exchange: Exchange, *, image_sha256: str | None = None
    ) -> RecordedTask:
        """Start a task file with its submit; its polls follow by the task's id."""
        exchange = self._scrubbed(exchange)
        task_id = exchange.data.get("id") if exchange.status == 200 else None
        task = RecordedTask(
            file=self.cassette.next_task_file(model),
            model=model,
            submit=exchange,
            task_id=task_id if isinstance(task_id, str) else None,
            image_sha256=image_sha256,
        )
        task.contract_violations = exchange_violations(exchange, "submit", model=model)
        self.cassette.tasks.append(task)
        if task.task_id is not None:
            self._tasks[task.task_id] = (task, self.clock.now())
        self.cassette.save_task(task)
        return task

    def knows(self, task_id: str) -> bool:
        return task_id in self._tasks

    def record_poll(self, task_id: str, exchange: Exchange) -> None:
        """Append one poll of a recorded task, timed from its submit's answer."""
        task, started = self._tasks[task_id]
        exchange = self._scrubbed(exchange)
        exchange.t = max(0.0, self.clock.now() - started)
        where = f"polls[{len(task.polls)}]"
        task.polls.append(exchange)
        task.contract_violations += exchange_violations(exchange, where)
        self.cassette.save_task(task)

    def record_exchange(self, exchange: Exchange) -> None:
        """Any other request (uploads, balance, a poll of an unknown task)."""
        exchange = self._scrubbed(exchange)
        where = f"exchanges[{len(self.cassette.exchanges)}]"
        self.cassette.exchanges.append(exchange)
        self.cassette.contract_violations += exchange_violations(exchange, where)
        self.cassette.save_index()

    async def keep_output(self, url: str, download: Download) -> OutputFile:
        """Store an output by content (once) and describe it for the cassette."""
        match = _EXTENSION.search(url.split("?", 1)[0])
        name = f"{download.sha256}.{match.group(1).lower() if match else 'mp4'}"
        path = self.cassette.outputs_dir / name
        if not path.is_file():
            await asyncio.to_thread(_write_file, path, download.content)
        return OutputFile(
            url=self.redactor.scrub(url.split("?", 1)[0]),
            name=name,
            size=len(download.content),
        )

    def _scrubbed(self, exchange: Exchange) -> Exchange:
        scrub = self.redactor.scrub
        return Exchange(
            method=exchange.method,
            path=scrub(exchange.path),
            status=exchange.status,
            body=scrub(exchange.body),
            request_body=scrub(exchange.request_body),
            query=scrub(exchange.query),
            t=exchange.t,
            files=exchange.files,
        )


def _write_file(target: Path, content: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.part")
    part.write_bytes(content)
    part.replace(target)
