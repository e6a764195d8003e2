"""Keeping the cyclic garbage collector off the stored predictions, without a leak.

Predictions live for the server's whole life, and every full collection walks
all of them: with 60,000 stored, those passes put a p99 of 211 ms on submits at
64 connections (benchmarks/bench_server.py). ``gc.freeze()`` moves what exists
to a permanent generation that collections skip, but it also moves cyclic
garbage the collector has not reached yet, which is then never freed: freezing
every second leaked about 90 bytes a poll (issue 26), and still leaks asyncio's
own cycle of every connection that closes after a freeze.

So :class:`FrozenHeap` freezes only what a collection has just found alive,
and takes it all back once an interval:

- after each automatic full collection (a ``gc.callbacks`` hook), it freezes
  the survivors, so the next one walks only what is new since (without this,
  a burst of submits made every full collection walk everything stored since
  the last pass: submit p99 53 ms at 16 connections against 9.7 ms);
- every ``every_s`` it unfreezes, runs one full collection, which frees
  whatever was frozen alive and has died since (asyncio's cycle of a
  connection that was open at a freeze and closed later), and freezes the
  survivors.

Garbage is held at most one interval (ten minutes). After each pass the C
allocator is asked to give freed memory back (glibc's ``malloc_trim``): a
30-minute soak with ``tracemalloc`` found the Python heap flat (+0.06 MB after
the warm-up) while RSS still crept up about 2 MB an hour, memory freed by
Python but kept by malloc (docs/performance.md). Only ``wavespeed-mock serve``
does this, never a test process that embeds the server.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
from collections.abc import Callable

__all__ = ["RECLAIM_EVERY_S", "FrozenHeap"]

RECLAIM_EVERY_S = 600.0
"""How often the frozen heap is collected once. Each pass walks everything: 65
to 105 ms with 100,000 stored predictions (the default retention) on this
2-core machine, so once in ten minutes; at once a minute, an 8 s wrk round of
submits at 64 connections that met a pass had a p99 of 179 ms."""


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or None on a C library without it (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class FrozenHeap:
    """A daemon thread that reclaims, then freezes, the heap every ``every_s``."""

    def __init__(self, every_s: float = RECLAIM_EVERY_S) -> None:
        self.every_s = every_s
        self.passes = 0
        self._trim = _malloc_trim()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="gc-reclaim", daemon=True
        )

    def start(self) -> FrozenHeap:
        self.reclaim()  # what start-up made (the loaded predictions) is frozen at once
        gc.callbacks.append(self._after_collection)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._after_collection in gc.callbacks:
            gc.callbacks.remove(self._after_collection)

    def _after_collection(self, phase: str, info: dict[str, int]) -> None:
        """Freeze the survivors of a full collection: only live objects remain."""
        if phase == "stop" and info.get("generation") == 2:
            gc.freeze()

    def reclaim(self) -> int:
        """Unfreeze, collect everything once, freeze the survivors; the objects freed."""
        gc.unfreeze()
        freed = gc.collect()
        gc.freeze()
        if self._trim is not None:
            self._trim()  # what Python freed goes back to the system
        self.passes += 1
        return freed

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.reclaim()
