"""Reading request bodies: bounded in size, answered in the envelope when bad.

Every route that takes a body reads it through here, so the size limit and the
400/413 answers are the same everywhere. A JSON body is bounded in shape too
(the contract's ``body_limits``): nesting depth and number length are checked
while parsing, and no string or key may hold text that cannot be stored as
UTF-8 (a lone surrogate) or NUL, so nothing unencodable is ever stored.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from ...contracts import body_limits, iter_errors
from ..errors import ApiError, bad_request, bad_request_message

__all__ = [
    "parse_json",
    "read_body",
    "read_json_body",
    "read_json_object",
]


async def read_json_body(request: Request, limit: int) -> Any:
    """The request's JSON body, read no further than ``limit`` bytes.

    Raises:
        ApiError: 413 past the limit, 400 for a body that is not JSON.
    """
    return parse_json(await read_body(request, limit))


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, read no further than ``limit`` bytes (413 beyond)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(
            413,
            f"Request body of {int(declared):,} bytes is over the {limit:,}-byte limit",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"Request body is over the {limit:,}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """``raw`` as JSON, bounded in shape (400 in the envelope for a bad body).

    Refused: an empty or broken body, ``NaN``/``Infinity``, a number literal
    longer than the contract's bound or out of float range, arrays and objects
    nested deeper than the bound, and any string or key holding NUL or a lone
    surrogate (the message names the field).
    """
    if not raw.strip():
        raise bad_request("$", "the body is empty; send a JSON object")
    limits = body_limits()
    try:
        # what json.loads does with bytes, with a decoder made once
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        body = _decoder(limits.max_number_chars)(text)
    except _BadLiteral as exc:
        raise bad_request("$", str(exc)) from None
    except RecursionError:
        # The decoder recurses per level; far past our bound it stops itself.
        raise bad_request("$", _too_deep(limits.max_depth)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request("$", f"not valid JSON ({exc})") from None
    problem = _shape_problem(body, limits.max_depth)
    if problem is not None:
        raise bad_request(*problem)
    return body


class _BadLiteral(Exception):
    """A number or constant the parser refuses (raised through ``json.loads``)."""


@functools.cache
def _decoder(max_chars: int) -> Callable[[str], Any]:
    """A JSON decoder's ``decode`` with our number and constant rules (one per bound)."""
    number = _number_parser(max_chars)
    return json.JSONDecoder(
        parse_int=number, parse_float=number, parse_constant=_constant
    ).decode


def _number_parser(max_chars: int) -> Any:
    def number(literal: str) -> int | float:
        if len(literal) > max_chars:
            raise _BadLiteral(
                f"a number literal of {len(literal):,} characters is longer than "
                f"the {max_chars} allowed"
            )
        if "." in literal or "e" in literal or "E" in literal:
            value = float(literal)
            if not math.isfinite(value):
                raise _BadLiteral(f"the number {literal} is out of range")
            return value
        return int(literal)

    return number


def _constant(name: str) -> Any:
    raise _BadLiteral(f"{name} is not valid JSON; send a finite number")


def _too_deep(max_depth: int) -> str:
    return f"arrays and objects nest deeper than {max_depth} levels"


# NUL and lone surrogates (json.loads joins escaped pairs into one code point).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _text_problem(text: str) -> str | None:
    # Most text is ASCII (a data: URI is megabytes of it): one C-speed scan.
    if text.isascii():
        at = text.find("\x00")
    else:
        match = _UNSTORABLE.search(text)
        at = match.start() if match else -1
    if at < 0:
        return None
    char = text[at]
    what = (
        "NUL (\\u0000)" if char == "\x00" else f"a lone surrogate ({ascii(char)[1:-1]})"
    )
    return f"holds {what} at character {at}; send text as UTF-8 without NUL"


def _path_of(path: str, key: str) -> str:
    if key.isidentifier() and key.isascii():
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def _shape_problem(body: Any, max_depth: int) -> tuple[str, str] | None:
    """The first (JSON path, problem) of a parsed body's shape, or None."""
    stack: list[tuple[Any, str, int]] = [(body, "$", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            problem = _text_problem(value)
            if problem:
                return path, problem
        elif isinstance(value, (dict, list)):
            if depth >= max_depth:
                return path, _too_deep(max_depth)
            if isinstance(value, list):
                stack.extend(
                    (v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)
                )
                continue
            for key, item in value.items():
                problem = _text_problem(key)
                if problem:
                    return path, f"a key {problem}"
                stack.append((item, _path_of(path, key), depth + 1))
    return None


async def read_json_object(
    request: Request, schema: str | None = None, *, optional: bool = False
) -> dict[str, Any]:
    """A small JSON object body, checked against the contract's ``schema``.

    Bounded by the contract's JSON body limit; ``optional`` makes an empty
    body read as ``{}``.

    Raises:
        ApiError: 413 past the limit, 400 naming each field that breaks the schema.
    """
    if optional:
        length = request.headers.get("content-length")
        if length == "0" or (
            length is None and "transfer-encoding" not in request.headers
        ):
            return {}
    body = await read_json_body(request, body_limits().json_bytes)
    if not isinstance(body, dict):
        raise bad_request("$", f"expected a JSON object, got {body!r:.60}")
    if schema is not None:
        problems = list(iter_errors(schema, body))
        if problems:
            raise ApiError(400, bad_request_message(problems))
    return body
