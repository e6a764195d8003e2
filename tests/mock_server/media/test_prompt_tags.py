"""Prompt tags and prompt bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wavespeed_mock.mock_server.media import (
    PromptError,
    check_prompt,
    parse_prompt_tags,
)


def test_speech_and_captions_are_split_out() -> None:
    tags = parse_prompt_tags(
        "A man says <S>Hello there.<E> then <S>Bye<E>. <AUDCAP>rain, wind<ENDAUDCAP>"
    )
    assert tags.speech == ("Hello there.", "Bye")
    assert tags.captions == ("rain, wind",)
    assert tags.visual == "A man says then ."


def test_ovi_1_1_audio_suffix_is_a_caption() -> None:
    tags = parse_prompt_tags("A dog runs on the beach. Audio: waves and barking")
    assert tags.captions == ("waves and barking",)
    assert tags.visual == "A dog runs on the beach."


def test_no_tags() -> None:
    tags = parse_prompt_tags("Just a picture")
    assert (tags.speech, tags.captions, tags.visual) == ((), (), "Just a picture")


def test_unclosed_and_empty_tags_are_left_alone() -> None:
    tags = parse_prompt_tags("<S>never closed <AUDCAP> <ENDAUDCAP>")
    assert tags.speech == ()
    assert tags.captions == ()
    assert "never closed" in tags.visual


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["<S>", "<E>", "<AUDCAP>", "<ENDAUDCAP>", "a", " ", "Audio:"])
    ).map("".join)
)
def test_parsing_never_fails(prompt: str) -> None:
    tags = parse_prompt_tags(prompt)
    assert all(s == s.strip() and s for s in tags.speech + tags.captions)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [("", "0 characters"), ("x" * 10_001, "10001 characters"), (None, "NoneType")],
)
def test_prompts_out_of_bounds_are_refused(prompt: object, message: str) -> None:
    with pytest.raises(PromptError, match=message):
        check_prompt(prompt)


def test_prompt_bounds_come_from_the_contract() -> None:
    assert check_prompt("x") == "x"
    assert check_prompt("x" * 10_000) == "x" * 10_000
