"""Retention: which stored predictions go, and what a prune removed.

A prediction is pruned when it is older than ``max_age_s`` on the server clock
or when more than ``max_predictions`` are stored (the oldest go first). Both
rules look at the store from its oldest end and stop at the first prediction
they keep, so a prune costs what it removes, not what is stored.
:class:`Retention` applies a policy to one server's state: it removes the chosen
predictions from memory and the database (on the loop's thread), then deletes
their files on a worker; uploads expire and the render cache is trimmed in the
same pass. It is told of each submit (:meth:`Retention.after_submit`) and never
calls the service back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..settings import Settings
from .clock import ServerClock
from .components import Expiring, FaultSource
from .engine import Engine, TrimmableCache
from .images import ImageLoader
from .lifecycle import is_refunded
from .objects import LocalFiles, ObjectStore, ObjectStoreError
from .prediction import Prediction
from .renders import RenderQueue
from .store import Store, StoreError
from .watch import TerminalWatch

__all__ = ["PruneReport", "Retention", "RetentionPolicy", "delete_files"]

log = logging.getLogger("wavespeed_mock.server")

ORPHAN_GRACE_S = 60.0
"""Files younger than this are never swept as orphans at start (a submit under
way may be writing them)."""


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


class Retention:
    """A :class:`RetentionPolicy` applied to one server's predictions and files."""

    def __init__(
        self,
        policy: RetentionPolicy,
        *,
        store: Store,
        clock: ServerClock,
        renders: RenderQueue,
        watch: TerminalWatch,
        images: ImageLoader,
        engine: Engine,
        outputs_dir: Path,
        objects: ObjectStore | None = None,
        faults: FaultSource | None = None,
        expiring: Sequence[Expiring] = (),
        interval_s: float = 0.0,
    ) -> None:
        self.policy = policy
        self.objects: ObjectStore = objects if objects is not None else LocalFiles()
        self.store = store
        self.clock = clock
        self.renders = renders
        self.watch = watch
        self.images = images
        self.engine = engine
        self.outputs_dir = outputs_dir
        self.faults = faults
        self.expiring = tuple(expiring)
        self.interval_s = interval_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._prune_due = False
        self._maintenance: asyncio.Task[None] | None = None
        self._background: set[asyncio.Future[Any]] = set()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """At server start: what the policy says goes, goes (before anything is
        re-queued for it); then the files of rows a crash removed before their
        files went; then the periodic prune, if any."""
        self._loop = loop
        self._in_background(self._remove_expired(self.policy))
        sweep = loop.run_in_executor(None, self._sweep_orphans)
        self._background.add(sweep)
        sweep.add_done_callback(self._background.discard)
        if self.interval_s > 0:
            self._maintenance = loop.create_task(self._maintain())

    def stop(self) -> None:
        """No more periodic prunes (files being deleted finish on their worker)."""
        if self._maintenance is not None:
            self._maintenance.cancel()

    def prune(self, policy: RetentionPolicy | None = None) -> PruneReport:
        """Apply retention now, blocking (``wavespeed-mock prune`` on a data folder):
        predictions and their files, expired uploads, the render cache.

        ``policy`` replaces the configured one for this prune only.
        """
        policy = policy or self.policy
        report = self._remove_expired(policy)
        self._finish_prune(policy, report)
        return report

    async def aprune(self, policy: RetentionPolicy | None = None) -> PruneReport:
        """:meth:`prune` from the event loop: files are deleted on a worker thread."""
        policy = policy or self.policy
        report = self._remove_expired(policy)
        await asyncio.to_thread(self._finish_prune, policy, report)
        return report

    def after_submit(self) -> None:
        """A prediction was stored: prune (batched, on the loop) once the count
        runs over ``max_predictions`` by its slack."""
        bound = self.policy.max_predictions
        if (
            bound <= 0
            or self._prune_due
            or len(self.store) <= bound + self.policy.slack()
            or self._loop is None
        ):
            return
        self._prune_due = True

        def prune() -> None:
            self._prune_due = False
            policy = self.policy.replace(max_age_s=0.0)  # count only: cheap
            try:
                report = self._remove_expired(policy)
            except StoreError as exc:
                log.error("pruning failed: %s", exc)
                return
            self._in_background(report)

        self._loop.call_soon(prune)

    def _remove_expired(self, policy: RetentionPolicy) -> PruneReport:
        """Take what ``policy`` says goes out of memory and the database (on the
        loop's thread: it reads the store's live view); its files are still to go."""
        now = self.clock.now()
        victims = policy.victims(self.store.oldest(), len(self.store), now)
        report = PruneReport()
        if not victims:
            return report
        gone = self.store.remove(victims, refunded=lambda p: is_refunded(p, now))
        report.predictions = len(gone)
        digests = set()
        for p in gone:
            self.renders.forget(p.id)
            report.files.extend(self.outputs_dir / name for name in p.output_names)
            if p.image_digest:
                digests.add(p.image_digest)
        for digest in digests:
            if not self.store.uses_image(digest):
                report.files.append(self.images.input_path(digest))
        self.watch.forget(p.id for p in gone)
        if self.faults is not None:
            self.faults.forget([p.id for p in gone])
        return report

    def _finish_prune(self, policy: RetentionPolicy, report: PruneReport) -> None:
        """The blocking part of a prune: files, uploads, the cache."""
        files, report.files = report.files, []
        for path in files:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            if path.parent == self.outputs_dir:
                report.outputs += 1
            else:
                report.inputs += 1
        if self.objects.shared and files:
            # Kept by whichever machine made them: gone from the bucket too.
            folders = {self.outputs_dir: "outputs", self.images.inputs_dir: "inputs"}
            try:
                self.objects.delete(
                    f"{folders[f.parent]}/{f.name}"
                    for f in files
                    if f.parent in folders
                )
            except ObjectStoreError as exc:
                log.warning("pruned files stay in the object store: %s", exc)
        if policy.max_upload_age_s > 0:
            report.uploads = sum(
                e.expire(policy.max_upload_age_s) for e in self.expiring
            )
        if policy.max_cache_bytes > 0 and isinstance(self.engine, TrimmableCache):
            report.cache_files, report.cache_bytes = self.engine.trim_cache(
                policy.max_cache_bytes, self._release_clips
            )
        if report.predictions or report.uploads or report.cache_files:
            log.info("pruned %s", report.as_json())

    def _release_clips(self, clips: Sequence[Path]) -> None:
        """Cached clips are about to be evicted: predictions that point at one get
        their own link to it in ``outputs/``, so their output URLs keep working."""
        going = {str(c) for c in clips}
        for p in self.store.all():
            if p.output_file is None or p.output_file not in going:
                continue
            target = self.outputs_dir / p.output_name
            try:
                os.link(p.output_file, target)
            except FileExistsError:
                pass
            except OSError as exc:
                log.warning("cannot keep the clip of %s: %s", p.id, exc)
                continue
            self.store.update(p, output_file=None)

    def _sweep_orphans(self) -> None:
        """Delete outputs and kept images that no stored prediction has (a prune
        cut short by a crash leaves them: its rows went first). Blocking."""
        recent = time.time() - ORPHAN_GRACE_S

        def no_prediction(pid: str) -> bool:
            return self.store.get(pid) is None

        def unused(digest: str) -> bool:
            return not self.store.uses_image(digest)

        sweeps: tuple[tuple[Path, str, Callable[[str], bool]], ...] = (
            (self.outputs_dir, "", no_prediction),
            (self.images.inputs_dir, ".img", unused),
        )
        for folder, suffix, orphan in sweeps:
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                name = entry.name
                if name.startswith(".") or not name.endswith(suffix):
                    continue
                stem = (
                    name[: -len(suffix)]
                    if suffix
                    else name.split(".", 1)[0].split("-", 1)[0]
                )
                with contextlib.suppress(OSError):
                    # A file this young may belong to a submit under way.
                    if entry.stat().st_mtime < recent and orphan(stem):
                        os.unlink(entry.path)

    def _in_background(self, report: PruneReport) -> None:
        """Delete a prune's files on a worker thread (now, without a loop)."""
        if not report.files:
            return
        files, report.files = report.files, []
        if self._loop is None:
            delete_files(files)
            return
        future = self._loop.run_in_executor(None, delete_files, files)
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    async def _maintain(self) -> None:
        """Every ``interval_s``: retention by age, expired uploads, the cache."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.periodic_pass()
            except Exception:  # a failed prune must not end the maintenance
                log.exception("periodic prune failed")

    async def periodic_pass(self) -> PruneReport | None:
        """One periodic prune, made by one process at a time on a shared store
        (the others skip this interval: None)."""
        with self.store.exclusive("retention") as mine:
            return await self.aprune() if mine else None
