"""Keeping the cyclic garbage collector off the stored predictions, without a leak.

Predictions live for the server's whole life, and every full collection walks
all of them: with 60,000 stored, those passes put a p99 of 211 ms on submits at
64 connections (benchmarks/bench_server.py). ``gc.freeze()`` moves what exists
to a permanent generation that collections skip, but it also moves cyclic
garbage the collector has not reached yet, which is then never freed: freezing
every second leaked about 90 bytes a poll (issue 26), and still leaks asyncio's
own cycle of every connection that closes after a freeze.

So :class:`FrozenHeap` never freezes without reclaiming first: every
``every_s`` it unfreezes, runs one full collection (which frees whatever
garbage was frozen since the last pass) and freezes what survived. Between
passes, automatic collections walk only what is new; garbage is held at most
one interval. Only ``wavespeed-mock serve`` does this, never a test process
that embeds the server.
"""

from __future__ import annotations

import gc
import threading

__all__ = ["RECLAIM_EVERY_S", "FrozenHeap"]

RECLAIM_EVERY_S = 60.0
"""How often the frozen heap is collected once: one full walk a minute."""


class FrozenHeap:
    """A daemon thread that reclaims, then freezes, the heap every ``every_s``."""

    def __init__(self, every_s: float = RECLAIM_EVERY_S) -> None:
        self.every_s = every_s
        self.passes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="gc-reclaim", daemon=True
        )

    def start(self) -> FrozenHeap:
        self.reclaim()  # what start-up made (the loaded predictions) is frozen at once
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def reclaim(self) -> int:
        """Unfreeze, collect everything once, freeze the survivors; the objects freed."""
        gc.unfreeze()
        freed = gc.collect()
        gc.freeze()
        self.passes += 1
        return freed

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.reclaim()
