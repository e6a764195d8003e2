"""Domain generators: values that look like what a team sends (readable
prompts with Ovi's tags, seeds with their edges, URLs, timestamps, data: URIs
holding a real PNG), each still checked against its schema by the translator."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from ...contracts import (
    load_schema,
    seed_rule,
)
from ._keywords import MAX_PROMPT_SIZE

# A real 1x1 PNG, so that a server which decodes a generated data: URI gets an image.
_TINY_PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJ"
    "RU5ErkJggg=="
)
_HOSTS = ("example.com", "cdn.example.org", "images.example.net", "127.0.0.1:8000")
_SCHEMES = ("https", "http", "HTTPS")
_VOCABULARY = (
    "a",
    "the",
    "knight",
    "ocean",
    "wave",
    "sunrise",
    "rain",
    "city",
    "neon",
    "forest",
    "slowly",
    "walks",
    "smiles",
    "camera",
    "pans",
    "close-up",
    "wide",
    "shot",
    "of",
    "glowing",
    "ancient",
    "robot",
    "cat",
    "dances",
    "under",
    "stars",
    "cinematic",
)
_SPEECH = ("Hello there.", "I will defend this land.", "Where are we going?", "Look!")
_AUDIO = ("Thunder rolls.", "Soft piano music.", "Waves crash on rocks.", "Birdsong.")


def prompts(
    *, min_size: int | None = None, max_size: int | None = None, tags: bool = True
) -> st.SearchStrategy[str]:
    """Readable prompts, often tagged: `<S>…<E>` speech, `<AUDCAP>…<ENDAUDCAP>` audio.

    Lengths stay within the contract's prompt bounds and ``max_size`` (default
    ``MAX_PROMPT_SIZE``).
    """
    schema = load_schema("common.json")["$defs"]["prompt"]
    low = max(int(schema.get("minLength", 0)), min_size or 0)
    high = min(
        int(schema.get("maxLength", MAX_PROMPT_SIZE)),
        MAX_PROMPT_SIZE if max_size is None else max_size,
    )
    if low > high or high < 1:
        raise ValueError(
            f"prompts(min_size={min_size!r}, max_size={max_size!r}): no prompt fits; "
            f"the contract allows {schema.get('minLength')} to "
            f"{schema.get('maxLength')}"
        )
    vocabulary = st.sampled_from(_VOCABULARY)
    # Mostly plain words, sometimes any letters: the server must cope with Unicode.
    word = st.one_of(
        vocabulary,
        vocabulary,
        vocabulary,
        st.text(st.characters(codec="utf-8", categories=["L"]), min_size=1, max_size=8),
    )
    sentence = st.lists(word, min_size=1, max_size=8).map(" ".join)
    speech = (st.sampled_from(_SPEECH) | sentence).map(lambda s: f"<S>{s}<E>")
    audio = (st.sampled_from(_AUDIO) | sentence).map(
        lambda s: f"<AUDCAP>{s}<ENDAUDCAP>"
    )
    tail = st.lists(speech | audio, max_size=3) if tags else st.just([])

    def join(head: str, segments: list[str], separator: str) -> str:
        parts = [head]
        for segment in segments:  # drop whole tags rather than cut one in half
            if len(separator.join([*parts, segment])) <= high:
                parts.append(segment)
        return separator.join(parts)[:high]

    return st.builds(join, sentence, tail, st.sampled_from(["\n", " "])).filter(
        lambda p: len(p) >= low
    )


def seeds() -> st.SearchStrategy[int]:
    """Request seeds: the random-seed value, and seeds within the contract's bounds.

    The random-seed value (-1) and both bounds are always among the first tried.
    """
    rule = seed_rule()
    low, high = rule.minimum, rule.maximum
    edges = sorted({rule.random, low, low + 1, high - 1, high})
    return st.sampled_from(edges) | st.integers(low, high)


def _readable_characters() -> st.SearchStrategy[str]:
    ascii_printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
    return st.one_of(
        ascii_printable,
        ascii_printable,
        ascii_printable,
        st.characters(codec="utf-8", categories=["L", "N"]),
    )


def _urls(pattern: str | None) -> st.SearchStrategy[str]:
    schemes = [
        s
        for s in _SCHEMES
        if pattern is None or re.search(pattern, f"{s}://example.com/a.png")
    ]
    if not schemes:  # a pattern that wants another scheme: build from the pattern
        return _pattern_strings(str(pattern))
    segment = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,11}", fullmatch=True)
    return st.builds(
        lambda scheme, host, path, suffix: (
            f"{scheme}://{host}/{'/'.join(path)}{suffix}"
        ),
        st.sampled_from(schemes),
        st.sampled_from(_HOSTS),
        st.lists(segment, min_size=1, max_size=3),
        st.sampled_from([".png", ".jpg", ".webp", ".mp4", ""]),
    )


def _datetimes() -> st.SearchStrategy[str]:
    def render(moment: datetime, digits: int, zone: str) -> str:
        fraction = f"{moment.microsecond:06d}000"[:digits]
        return f"{moment:%Y-%m-%dT%H:%M:%S}" + (f".{fraction}" if digits else "") + zone

    # Real answers carry 0, 2, 3 or 9 fractional digits (Go's RFC3339Nano).
    return st.builds(
        render,
        st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
        st.sampled_from([0, 2, 3, 6, 9]),
        st.sampled_from(["Z", "Z", "+00:00"]),
    )


def _pattern_strings(pattern: str) -> st.SearchStrategy[str]:
    """Strings that contain a match: JSON Schema patterns are unanchored searches."""
    core = st.from_regex(pattern, fullmatch=True)
    filler = st.text(st.sampled_from("abcxyz0123456789"), max_size=12)
    prefix = st.just("") if pattern.startswith("^") else filler
    suffix = (
        st.just("") if pattern.endswith("$") and not pattern.endswith("\\$") else filler
    )
    return st.builds(lambda a, b, c: a + b + c, prefix, core, suffix)


def _data_uris() -> st.SearchStrategy[str]:
    return st.builds(
        lambda kind, params: f"data:image/{kind}{params};base64,{_TINY_PNG_B64}",
        st.sampled_from(["png", "PNG"]),
        st.sampled_from(["", ";name=tiny.png"]),
    )


def _json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-1000, 1000)
        | st.floats(-1e6, 1e6, allow_nan=False)
        | st.text(_readable_characters(), max_size=12)
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.text(_readable_characters(), max_size=8), inner, max_size=3
            )
        ),
        max_leaves=6,
    )
