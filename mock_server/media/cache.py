"""A content-addressed cache of rendered clips, so a repeat costs a file lookup."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import threading
import weakref
from pathlib import Path

from ._ffmpeg import ffmpeg_version
from .prompt_tags import check_prompt
from .render import CLIP_FPS, CLIP_FRAMES, RENDERER_VERSION, check_seed, render_clip
from .writer import ENCODER_SETTINGS, PARTIAL_MARK

__all__ = ["ClipCache"]


@functools.lru_cache(maxsize=4096)
def _clip_key(
    image_digest: str | None,
    prompt: str,
    seed: int,
    size: tuple[int, ...] | None,
    threads: int,
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
    wait for the first instead of rendering twice. Nothing is evicted: delete the
    folder to reclaim the space.

    Example:
        >>> cache = ClipCache(Path(".wavespeed-mock/cache"))
        >>> cache.get_or_render(image=None, prompt="Waves", seed=1, size=(960, 540))
        PosixPath('.wavespeed-mock/cache/3f/3f9c...mp4')
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._guard = threading.Lock()

    def key(
        self,
        *,
        image: bytes | None,
        prompt: str,
        seed: int,
        size: tuple[int, int] | None,
        threads: int = 1,
        image_digest: str | None = None,
    ) -> str:
        """The hex SHA-256 naming the clip these inputs render to.

        ``image_digest`` is the image's hex SHA-256 when the caller already has it
        (the server hashes an image once, when it comes in).
        """
        digest = image_digest
        if digest is None and image is not None:
            digest = hashlib.sha256(image).hexdigest()
        return _clip_key(
            digest, prompt, seed, tuple(size) if size is not None else None, threads
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

    def path_for(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.mp4"

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
    ) -> Path:
        """The cached clip for these inputs, rendered first if it is not there.

        Takes :func:`render_clip`'s arguments except ``path`` and raises its errors.
        """
        key = self.key(
            image=image,
            prompt=prompt,
            seed=seed,
            size=size,
            threads=threads,
            image_digest=image_digest,
        )
        path = self.path_for(key)
        if path.is_file():
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
            path.parent.mkdir(parents=True, exist_ok=True)
            render_clip(
                image=image,
                prompt=prompt,
                seed=seed,
                size=size,
                path=path,
                max_image_pixels=max_image_pixels,
                threads=threads,
            )
        return path


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
