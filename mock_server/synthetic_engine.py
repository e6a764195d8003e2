"""The synthetic engine: Ovi-shaped clips in under a second, on any machine.

Clips come from :class:`~wavespeed_mock.mock_server.media.ClipCache` under
``<data_dir>/cache``, so a repeated request costs a file lookup. A rendered job
gets its own file at ``job.output_path``, hard-linked to the cached one where the
file system allows, copied otherwise; a cache hit found on the submit path
(:meth:`SyntheticEngine.render_cached`) is served from the cache itself.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..contracts import OutputPlan
from .core.engine import (
    INTERNAL_ERROR,
    EngineOption,
    RenderFailed,
    RenderJob,
    RenderResult,
)
from .core.objects import open_objects
from .media import (
    CLIP_FPS,
    CLIP_FRAMES,
    ClipCache,
    EncoderError,
    EncoderTimeout,
    ImageDecodeError,
    ImageTooLargeError,
    MediaError,
)
from .media.cache import SHARED_PREFIX, Variant
from .settings import Settings

log = logging.getLogger("wavespeed_mock.server")

__all__ = ["SyntheticEngine"]

# Task error codes of the API (see RenderFailed).
_MEDIA_ACCESS = 1402
_EXECUTION = 1405
_INTERNAL = INTERNAL_ERROR


class SyntheticEngine:
    """Renders deterministic synthetic clips with the bundled ffmpeg.

    Each render runs x264 with ``settings.render_threads`` threads (1 by default),
    so one render per core keeps the machine busy without oversubscribing it.
    """

    name: ClassVar[str] = "synthetic"
    max_concurrency: ClassVar[int] = os.cpu_count() or 1
    reports_progress: ClassVar[bool] = False
    options: ClassVar[tuple[EngineOption, ...]] = ()
    default_profile: ClassVar[str | None] = None
    default_sync_wait_s: ClassVar[float | None] = None

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # With --outputs s3://...: one render cache for every machine (a clip
        # made on one is fetched, not made again, on another).
        shared = (
            open_objects(settings.outputs, endpoint=settings.s3_endpoint)
            if settings.outputs
            else None
        )
        self.cache = ClipCache(
            settings.cache_dir or Path(settings.data_dir) / "cache", shared=shared
        )
        self._present: dict[str, Path] = {}
        """Clips known to be in the cache, by key, with their paths."""
        self.cache.remove_partials()

    def trim_cache(
        self, max_bytes: int, release: Callable[[Sequence[Path]], None]
    ) -> tuple[int, int]:
        """Bound the clip cache (least recently used first; see ``ClipCache.trim``)."""

        def forget(paths: Sequence[Path]) -> None:
            for path in paths:
                self._present.pop(path.stem, None)
            release(paths)
            if self.cache.shared is not None:  # the shared cache is bounded too
                try:
                    self.cache.shared.delete([SHARED_PREFIX + p.name for p in paths])
                except OSError as exc:
                    log.warning("evicted clips stay in the shared cache: %s", exc)

        return self.cache.trim(max_bytes, forget)

    @classmethod
    def from_settings(
        cls, settings: Settings, options: Mapping[str, Any]
    ) -> SyntheticEngine:
        return cls(settings)

    def render(self, job: RenderJob) -> RenderResult:
        """Render ``job`` (or find it in the cache) and place it at its output path.

        Raises:
            RenderFailed: code 1402 for an image that cannot be decoded or has too
                many pixels, 1405 for other bad input, 5000 if ffmpeg fails.
        """
        started = time.perf_counter()
        size = _size(job)
        count = job.plan.count if job.plan is not None else 1
        try:
            clips = [
                self.cache.get_or_render(
                    image=job.image,
                    prompt=job.prompt,
                    seed=job.seed,
                    size=size,
                    max_image_pixels=self.settings.max_image_pixels,
                    threads=self.settings.render_threads,
                    image_digest=job.image_digest,
                    variant=_variant(job, index),
                )
                for index in range(count)
            ]
        except (ImageDecodeError, ImageTooLargeError) as exc:
            source = f" from {job.image_source}" if job.image_source else ""
            raise RenderFailed(
                f"The image{source} cannot be used: {exc}", code=_MEDIA_ACCESS
            ) from exc
        except EncoderTimeout as exc:
            raise RenderFailed(str(exc), code=_INTERNAL) from exc
        except EncoderError as exc:
            raise RenderFailed(
                f"Encoding the clip failed: {exc}", code=_INTERNAL
            ) from exc
        except MediaError as exc:
            raise RenderFailed(str(exc), code=_EXECUTION) from exc
        target = Path(job.output_path)
        try:
            for index, clip in enumerate(clips):
                _place(clip, target if index == 0 else _nth(target, index))
        except OSError as exc:
            raise RenderFailed(
                f"Cannot write the clip to {str(job.output_path)!r}: {exc}",
                code=_INTERNAL,
            ) from exc
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        return RenderResult(
            inference_ms=elapsed_ms,
            nsfw=(False,) * count,
            kept_as=None
            if self.cache.shared is None
            else SHARED_PREFIX + clips[0].name,
        )

    def render_cached(self, job: RenderJob) -> RenderResult | None:
        """The clip from the cache alone (a file lookup), or None on a miss.

        The server calls this on the submit path, so a repeated request costs no
        worker hand-off; a miss, or any problem, falls back to :meth:`render`.
        """
        started = time.perf_counter()
        if job.plan is not None and job.plan.count > 1:
            return None  # several files to place: a worker's job
        size = _size(job)
        variant = _variant(job, 0)
        try:
            key = self.cache.key(
                image=job.image,
                prompt=job.prompt,
                seed=job.seed,
                size=size,
                threads=self.settings.render_threads,
                image_digest=job.image_digest,
                variant=variant,
            )
        except MediaError:
            return None
        path = self._present.get(key)
        if path is None or self.cache.evicting(key):
            path = self.cache.path_for(key, variant.suffix)
            if self.cache.evicting(key) or not path.is_file():
                return None
            self._present[key] = path  # only trim_cache removes a clip while we run
        self.cache.touch(key)
        # No copy, no link: the server serves the cached file itself (one
        # metadata write per submit cost a third of the submit path's time).
        return RenderResult(
            inference_ms=round((time.perf_counter() - started) * 1000),
            output_path=path,
        )

    def close(self) -> None:
        """Nothing to release: each render's ffmpeg exits with it."""


def _variant(job: RenderJob, index: int) -> Variant:
    """The cache's variant for output ``index`` of ``job`` (an Ovi clip without a plan)."""
    return Variant() if job.plan is None else _plan_variant(job.plan, index)


@functools.lru_cache(maxsize=1024)
def _plan_variant(plan: OutputPlan, index: int) -> Variant:
    # Once per distinct plan: a submit that hits the cache asks for it every time.
    return Variant(
        kind=plan.kind if plan.kind in ("video", "image", "audio") else "text",
        format=plan.format,
        frames=plan.frame_count if plan.kind == "video" else CLIP_FRAMES,
        fps=plan.fps if plan.kind == "video" else CLIP_FPS,
        audio=plan.audio if plan.kind == "video" else True,
        duration_s=plan.duration_s if plan.kind == "audio" else None,
        scale=plan.scale,
        speech=plan.speech,
        index=index,
    )


def _nth(first: Path, index: int) -> Path:
    """Output ``index``'s path beside the first: ``<id>-<index><suffix>``."""
    return first.with_name(f"{first.stem}-{index}{first.suffix}")


def _size(job: RenderJob) -> tuple[int, int] | None:
    """The requested (width, height), or None to follow the image."""
    return (job.width, job.height) if job.width and job.height else None


def _place(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` atomically: a hard link if possible, else a copy."""
    try:
        # A new name: one link call creates it whole, atomically (the usual case).
        os.link(source, target)
        return
    except FileNotFoundError:
        if not source.exists():
            raise
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        pass  # re-rendering over an old file: replace it atomically below
    except OSError:
        pass  # no hard links here: copy through a temp file
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".part", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
