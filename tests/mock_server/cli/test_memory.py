"""The serve process's collector policy: garbage caught by a freeze is reclaimed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from wavespeed_mock.mock_server.cli.memory import FrozenHeap

from .._support import wait_until


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    yield
    gc.unfreeze()  # leave the test process as it was


def test_garbage_frozen_by_a_freeze_is_reclaimed_by_the_next_pass() -> None:
    node = Node()
    alive = weakref.ref(node)
    del node
    gc.freeze()  # a freeze that caught the cycle before a collection did
    gc.collect()
    assert alive() is not None, "a frozen cycle outlives ordinary collections"
    heap = FrozenHeap()
    assert heap.reclaim() >= 1
    assert alive() is None
    assert gc.get_freeze_count() > 0  # the survivors are frozen again


def test_live_objects_survive_and_end_up_frozen() -> None:
    node = Node()
    FrozenHeap().reclaim()
    assert node.me is node
    assert gc.is_tracked(node) and gc.get_freeze_count() > 0


def test_the_thread_reclaims_every_interval_and_stops() -> None:
    heap = FrozenHeap(every_s=0.01).start()
    try:
        node = Node()
        alive = weakref.ref(node)
        del node
        gc.freeze()
        later = heap.passes + 2
        wait_until(lambda: heap.passes >= later, what="two reclaim passes")
        assert alive() is None
    finally:
        heap.stop()
    assert not heap._thread.is_alive()


def test_a_full_collection_leaves_its_survivors_frozen() -> None:
    heap = FrozenHeap(every_s=3600).start()
    try:
        node = Node()
        gc.collect()  # stands for an automatic full collection
        assert gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()
        young = [Node() for _ in range(100)]
        gc.collect()
        assert gc.get_freeze_count() >= frozen + 100  # the new survivors joined
        assert node.me is node and len(young) == 100
    finally:
        heap.stop()
    assert heap._after_collection not in gc.callbacks


def test_a_reclaim_gives_freed_memory_back_on_glibc() -> None:
    import platform

    from wavespeed_mock.mock_server.cli.memory import _malloc_trim

    trim = _malloc_trim()
    if platform.libc_ver()[0] != "glibc":
        assert trim is None
        return
    assert trim is not None
    blocks = [bytearray(64 * 1024) for _ in range(2000)]  # 128 MB, then freed
    del blocks
    assert trim() in (0, 1)  # 1: memory was released
