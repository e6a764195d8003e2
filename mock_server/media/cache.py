"""A content-addressed cache of rendered clips, so a repeat costs a file lookup."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ._ffmpeg import ffmpeg_version
from .outputs import render_image, render_sound, render_text
from .prompt_tags import check_prompt
from .render import CLIP_FPS, CLIP_FRAMES, RENDERER_VERSION, check_seed, render_clip
from .writer import ENCODER_SETTINGS, PARTIAL_MARK

__all__ = ["SHARED_PREFIX", "ClipCache", "SharedFiles", "Variant"]

log = logging.getLogger("wavespeed_mock.server")

SHARED_PREFIX = "cache/"
"""Where clips are kept in a :class:`SharedFiles` store: ``cache/<key><suffix>``."""


class SharedFiles(Protocol):
    """Files kept past this machine (``core.objects.ObjectStore``: a bucket).

    Its calls raise ``OSError`` when the store cannot answer."""

    def get(self, key: str, path: Path) -> bool: ...
    def put(self, key: str, path: Path) -> None: ...
    def delete(self, keys: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class Variant:
    """What kind of file a cache entry is; the default is Ovi's clip."""

    kind: str = "video"
    format: str = "mp4"
    frames: int = CLIP_FRAMES
    fps: int = CLIP_FPS
    audio: bool = True
    duration_s: float | None = None
    """A sound's length (videos: ``frames``)."""
    scale: float | None = None
    speech: bool = False
    index: int = 0
    """Which of a run's several outputs (each its own seed stream)."""

    @property
    def suffix(self) -> str:
        return "." + {"jpeg": "jpg", "tiff": "tif"}.get(self.format, self.format)

    def key_parts(self) -> dict[str, object]:
        """What sets this variant apart from the default clip (empty for it)."""
        default = Variant()
        return {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if getattr(self, name) != getattr(default, name)
        }


CLIP = Variant()

TOUCH_EVERY_S = 600.0
"""A hit writes the clip's modification time at most this often (a metadata
write per hit would cost the submit path a third of its time; see
docs/performance.md), so the order of use is on disk for every process."""
EVICTION_GRACE_S = 600.0
"""Clips used (by any process) more recently than this are never evicted."""


@functools.lru_cache(maxsize=4096)
def _clip_key(
    image_digest: str | None,
    prompt: str,
    seed: int,
    size: tuple[int, ...] | None,
    threads: int,
    variant: Variant = CLIP,
) -> str:
    # Memoised: a repeated request (the common case in a test suite) skips the
    # JSON and the second hash; every input of the clip is in the arguments.
    import numpy
    import PIL

    # No input checks here: the contract checked the request, and a miss goes
    # through render_clip, which checks its own arguments.
    parts = {
        "renderer": RENDERER_VERSION,
        "frames": CLIP_FRAMES,
        "fps": CLIP_FPS,
        "image": image_digest,
        "prompt": prompt,
        "seed": int(seed),
        "size": list(size) if size is not None else None,
        "threads": threads,
        "encoder": list(ENCODER_SETTINGS),
        "ffmpeg": ffmpeg_version(),
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        **variant.key_parts(),
    }
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=True).encode("ascii")
    return hashlib.sha256(blob).hexdigest()


class ClipCache:
    """Rendered clips under ``root``, named by a hash of everything that made them.

    The key covers the inputs (image bytes, prompt, seed, size), the x264 thread
    count, the encoder flags, the ffmpeg version and the numpy and Pillow versions
    (they shape the pixels and samples), and a renderer version. Files appear
    atomically (``write_clip`` renames a finished temporary file into place), so a
    crash never leaves half a clip under a key, and two processes rendering the same
    key each write whole, identical files. Within one process, identical requests
    wait for the first instead of rendering twice.

    :meth:`trim` bounds the folder: the least recently used clips go first, by
    modification time, which a render sets and a hit refreshes (at most every
    :data:`TOUCH_EVERY_S`), so several processes sharing a folder see each
    other's use; a clip used within :data:`EVICTION_GRACE_S` is never evicted.

    Example:
        >>> cache = ClipCache(Path(".wavespeed-mock/cache"))
        >>> cache.get_or_render(image=None, prompt="Waves", seed=1, size=(960, 540))
        PosixPath('.wavespeed-mock/cache/3f/3f9c...mp4')
    """

    def __init__(self, root: Path, *, shared: SharedFiles | None = None) -> None:
        self.root = Path(root)
        self.shared = shared
        """Where other machines keep their clips too (``--outputs s3://...``):
        a clip missing here is fetched from there before it is rendered, and a
        clip rendered here is put there."""
        self.fetched = 0
        """Clips this process got from ``shared`` instead of rendering them."""
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._guard = threading.Lock()
        self._touched: dict[str, float] = {}
        """Key to the monotonic time this process last refreshed its clip's mtime."""
        self._evicting: set[str] = set()
        self.added_bytes = 0
        """Bytes of clips this process rendered since the last trim."""

    def key(
        self,
        *,
        image: bytes | None,
        prompt: str,
        seed: int,
        size: tuple[int, int] | None,
        threads: int = 1,
        image_digest: str | None = None,
        variant: Variant = CLIP,
    ) -> str:
        """The hex SHA-256 naming the clip these inputs render to.

        ``image_digest`` is the image's hex SHA-256 when the caller already has it
        (the server hashes an image once, when it comes in).
        """
        digest = image_digest
        if digest is None and image is not None:
            digest = hashlib.sha256(image).hexdigest()
        return _clip_key(
            digest,
            prompt,
            seed,
            tuple(size) if size is not None else None,
            threads,
            variant,
        )

    def remove_partials(self) -> int:
        """Delete temporary files that killed renders left behind; how many.

        ``write_clip`` writes ``.<name>.pid<pid>.*.part`` and ``.f32`` files beside
        the clip and renames the finished file into place, so a process killed
        mid-encode leaves them. Only files of processes that no longer run are
        removed: a cache folder may be shared by several live servers.
        """
        if not self.root.is_dir():
            return 0
        removed = 0
        for pattern in ("*/.*.part", "*/.*.f32"):
            for leftover in self.root.glob(pattern):
                if _owner_alive(leftover.name):
                    continue
                with contextlib.suppress(OSError):
                    leftover.unlink()
                    removed += 1
        return removed

    def path_for(self, key: str, suffix: str = ".mp4") -> Path:
        return self.root / key[:2] / f"{key}{suffix}"

    def find(self, key: str) -> Path | None:
        """The file of ``key`` whatever its suffix, if there (a directory scan
        of one small folder; the mp4 of a clip is looked up first)."""
        clip = self.path_for(key)
        if clip.is_file():
            return clip
        folder = self.root / key[:2]
        for candidate in folder.glob(f"{key}.*") if folder.is_dir() else ():
            return candidate
        return None

    def evicting(self, key: str) -> bool:
        """Whether :meth:`trim` is deleting the clip of ``key`` right now."""
        return key in self._evicting

    def touch(self, key: str) -> None:
        """Record a use of the clip of ``key`` (cheap: a write at most every
        :data:`TOUCH_EVERY_S`)."""
        now = time.monotonic()
        last = self._touched.get(key)
        if last is not None and now - last < TOUCH_EVERY_S:
            return
        self._touched[key] = now
        with contextlib.suppress(OSError):
            found = self.find(key)
            if found is not None:
                os.utime(found)

    def size(self) -> int:
        """Bytes of clips in the folder (a scan)."""
        return sum(size for _, size, _ in self._clips())

    def trim(
        self,
        max_bytes: int,
        release: Callable[[Sequence[Path]], None] | None = None,
    ) -> tuple[int, int]:
        """Delete least recently used clips until at most ``max_bytes`` remain.

        ``release(paths)`` is called with the clips about to go before they are
        deleted. Clips used within :data:`EVICTION_GRACE_S` stay, even over the
        bound. Returns how many files and bytes were deleted. Blocking (a scan).
        """
        self.added_bytes = 0
        clips = self._clips()
        total = sum(size for _, size, _ in clips)
        if total <= max_bytes:
            return 0, 0
        recent = time.time() - EVICTION_GRACE_S
        victims: list[tuple[Path, int]] = []
        for mtime, size, path in sorted(clips):
            if total <= max_bytes or mtime > recent:
                break
            victims.append((path, size))
            total -= size
        if not victims:
            return 0, 0
        keys = {path.stem for path, _ in victims}
        with self._guard:
            self._evicting |= keys
        try:
            if release is not None:
                release([path for path, _ in victims])
            freed = files = 0
            for path, size in victims:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    files += 1
                    freed += size
                self._touched.pop(path.stem, None)
        finally:
            with self._guard:
                self._evicting -= keys
        return files, freed

    def _clips(self) -> list[tuple[float, int, Path]]:
        found: list[tuple[float, int, Path]] = []
        if not self.root.is_dir():
            return found
        for folder in os.scandir(self.root):
            if not folder.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(folder.path):
                if entry.name.startswith("."):
                    continue
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    found.append((st.st_mtime, st.st_size, Path(entry.path)))
        return found

    def get_or_render(
        self,
        *,
        image: bytes | None,
        prompt: str,
        seed: int,
        size: tuple[int, int] | None,
        max_image_pixels: int = 40_000_000,
        threads: int = 1,
        image_digest: str | None = None,
        variant: Variant = CLIP,
    ) -> Path:
        """The cached file for these inputs, made first if it is not there.

        Takes :func:`render_clip`'s arguments except ``path`` and raises its
        errors; ``variant`` says what kind of file (an Ovi clip by default).
        """
        key = self.key(
            image=image,
            prompt=prompt,
            seed=seed,
            size=size,
            threads=threads,
            image_digest=image_digest,
            variant=variant,
        )
        path = self.path_for(key, variant.suffix)
        if path.is_file() and key not in self._evicting:
            self.touch(key)
            return path
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = threading.Lock()
                self._locks[key] = lock
        with lock:
            if path.is_file():  # rendered while we waited
                return path
            check_prompt(prompt)  # bad input leaves no folder behind
            check_seed(seed)
            fetched = self._fetch(path)
            if not fetched:
                path.parent.mkdir(parents=True, exist_ok=True)
                _make(
                    variant, image, prompt, seed, size, path, max_image_pixels, threads
                )
            self._touched[key] = time.monotonic()
            with contextlib.suppress(OSError):
                self.added_bytes += path.stat().st_size
            if not fetched:
                self._share(path)
        return path

    def _fetch(self, path: Path) -> bool:
        """Whether ``path``'s clip came from the shared store (False: not there,
        or the store cannot answer: it is rendered here then)."""
        if self.shared is None:
            return False
        try:
            got = self.shared.get(SHARED_PREFIX + path.name, path)
        except OSError as exc:
            log.warning("rendering %s here: the shared cache: %s", path.name, exc)
            return False
        if got:
            self.fetched += 1
        return got

    def _share(self, path: Path) -> None:
        if self.shared is None:
            return
        try:
            self.shared.put(SHARED_PREFIX + path.name, path)
        except OSError as exc:  # other machines render it themselves
            log.warning("%s stays out of the shared cache: %s", path.name, exc)


def _make(
    variant: Variant,
    image: bytes | None,
    prompt: str,
    seed: int,
    size: tuple[int, int] | None,
    path: Path,
    max_image_pixels: int,
    threads: int,
) -> None:
    """Make one file of ``variant`` at ``path``."""
    # Each of a run's outputs draws from its own stream of the seed.
    seed = seed if variant.index == 0 else seed * 1009 + variant.index
    if variant.kind == "video":
        render_clip(
            image=image,
            prompt=prompt,
            seed=seed,
            size=size,
            path=path,
            max_image_pixels=max_image_pixels,
            threads=threads,
            frames=variant.frames,
            fps=variant.fps,
            audio=variant.audio,
        )
    elif variant.kind == "image":
        render_image(
            prompt=prompt,
            seed=seed,
            size=size,
            format=variant.format,
            path=path,
            image=image,
            max_image_pixels=max_image_pixels,
            scale=variant.scale,
        )
    elif variant.kind == "audio":
        render_sound(
            prompt=prompt,
            seed=seed,
            duration_s=variant.duration_s or 5.0,
            format=variant.format,
            path=path,
            speech=variant.speech,
        )
    else:
        render_text(prompt=prompt, seed=seed, path=path)


_OWNER = re.compile(rf"\.{PARTIAL_MARK}(\d+)\.")


def _owner_alive(name: str) -> bool:
    """Whether the process named in a temporary file's name still runs."""
    found = _OWNER.search(name)
    if found is None:
        return False  # not a name write_clip gives: nothing owns it
    pid = int(found.group(1))
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True
