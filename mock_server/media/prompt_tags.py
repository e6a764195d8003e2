"""Ovi's prompt tags: ``<S>speech<E>`` and ``<AUDCAP>background<ENDAUDCAP>``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from .errors import PromptError

__all__ = ["PromptTags", "check_prompt", "parse_prompt_tags"]

_SPEECH = re.compile(r"<S>(.*?)<E>", re.DOTALL)
_CAPTION = re.compile(r"<AUDCAP>(.*?)<ENDAUDCAP>", re.DOTALL)
# Ovi 1.1 writes the audio caption as a trailing "Audio: ..."; its 720 model's
# formatter turns that into <AUDCAP>...</ENDAUDCAP>, so we read both.
_AUDIO_SUFFIX = re.compile(r"(?:^|\s)Audio:\s*(.*)\Z", re.DOTALL)


@dataclass(frozen=True)
class PromptTags:
    """What a prompt asks to be heard, in the order written."""

    speech: tuple[str, ...]
    """The text of each ``<S>...<E>`` span."""
    captions: tuple[str, ...]
    """The text of each ``<AUDCAP>...<ENDAUDCAP>`` span (or trailing ``Audio:``)."""
    visual: str
    """The prompt with the tagged spans removed: what is to be seen."""


def parse_prompt_tags(prompt: str) -> PromptTags:
    """Split a prompt into its speech spans, audio captions and the rest.

    Unclosed tags are left in the visual text, as Ovi leaves them to the text
    encoder; empty spans are dropped.

    Example:
        >>> parse_prompt_tags("A man says <S>Hello there<E>. <AUDCAP>rain<ENDAUDCAP>")
        PromptTags(speech=('Hello there',), captions=('rain',), visual='A man says .')
    """
    speech = tuple(s.strip() for s in _SPEECH.findall(prompt) if s.strip())
    rest = _SPEECH.sub(" ", prompt)
    captions = [c.strip() for c in _CAPTION.findall(rest) if c.strip()]
    rest = _CAPTION.sub(" ", rest)
    suffix = _AUDIO_SUFFIX.search(rest)
    if suffix and suffix.group(1).strip():
        captions.append(suffix.group(1).strip())
        rest = rest[: suffix.start()]
    visual = " ".join(rest.split())
    return PromptTags(speech=speech, captions=tuple(captions), visual=visual)


@cache
def _prompt_bounds() -> tuple[int, int]:
    from ...contracts import load_schema

    rule = load_schema("common.json")["$defs"]["prompt"]
    return int(rule["minLength"]), int(rule["maxLength"])


def check_prompt(prompt: object) -> str:
    """Return ``prompt`` if it is a string within the contract's length bounds.

    Raises:
        PromptError: naming the bound that was broken.
    """
    if not isinstance(prompt, str):
        raise PromptError(f"prompt is a {type(prompt).__name__}; expected a string.")
    low, high = _prompt_bounds()
    if not low <= len(prompt) <= high:
        raise PromptError(
            f"prompt has {len(prompt)} characters; the contract allows {low} to {high} "
            "(common.json#/$defs/prompt)."
        )
    return prompt
