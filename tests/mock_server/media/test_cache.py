"""ClipCache: content-addressed, atomic, one render per key."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from wavespeed_mock.mock_server.media import (
    ClipCache,
    PromptError,
)
from wavespeed_mock.mock_server.media import (
    cache as cache_module,
)

SMALL = {"image": None, "prompt": "A lighthouse <S>Hi<E>", "seed": 7, "size": (64, 64)}


@pytest.fixture
def wavespeed_render_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Count the renders the cache starts (and still do them)."""
    calls: list[dict[str, Any]] = []
    real = cache_module.render_clip

    def counting(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(cache_module, "render_clip", counting)
    return calls


def test_a_repeat_is_a_lookup(
    tmp_path: Path, wavespeed_render_calls: list[dict[str, Any]]
) -> None:
    cache = ClipCache(tmp_path)
    first = cache.get_or_render(**SMALL)
    second = ClipCache(tmp_path).get_or_render(**SMALL)
    assert first == second
    assert first.is_file()
    assert len(wavespeed_render_calls) == 1
    assert first.parent.parent == tmp_path
    assert first.stem == cache.key(**SMALL)


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 8},
        {"prompt": "A lighthouse"},
        {"size": (64, 32)},
        {"image": b"x"},
        {"threads": 2},
    ],
)
def test_every_input_is_in_the_key(tmp_path: Path, change: dict[str, Any]) -> None:
    cache = ClipCache(tmp_path)
    assert cache.key(**{**SMALL, **change}) != cache.key(**SMALL)


def test_the_encoder_settings_are_in_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ClipCache(tmp_path)
    before = cache.key(**SMALL)
    # Keys are memoised per process (the settings never change while it runs),
    # so forget them after each change.
    monkeypatch.setattr(cache_module, "ENCODER_SETTINGS", ("-preset", "medium"))
    cache_module._clip_key.cache_clear()
    assert cache.key(**SMALL) != before
    monkeypatch.undo()
    monkeypatch.setattr(cache_module, "ffmpeg_version", lambda: "ffmpeg version 0")
    cache_module._clip_key.cache_clear()
    assert cache.key(**SMALL) != before
    monkeypatch.undo()
    cache_module._clip_key.cache_clear()


def test_concurrent_identical_requests_render_once(
    tmp_path: Path, wavespeed_render_calls: list[dict[str, Any]]
) -> None:
    cache = ClipCache(tmp_path)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_render(**SMALL)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert len(results) == 4
    assert len(wavespeed_render_calls) == 1
    assert results[0].read_bytes()[4:8] == b"ftyp"


def test_a_failed_render_leaves_nothing_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wavespeed_mock.mock_server.media import render as render_module

    def crash(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # as if the process were stopped mid-render

    def frames_then_crash(*args: Any, **kwargs: Any) -> Any:
        yield from real_frames(*args, **kwargs)
        crash()

    real_frames = render_module.iter_frames
    monkeypatch.setattr(render_module, "iter_frames", frames_then_crash)
    with pytest.raises(KeyboardInterrupt):
        ClipCache(tmp_path).get_or_render(**SMALL)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_bad_input_is_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(PromptError):
        ClipCache(tmp_path).get_or_render(**{**SMALL, "prompt": ""})
    assert list(tmp_path.iterdir()) == []
