"""Format checks that jsonschema does not do by itself.

jsonschema checks ``uri`` only when the optional rfc3987 package is installed and
``date-time`` only with rfc3339-validator; the contract needs both, always.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlsplit

from jsonschema import FormatChecker

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f<>\"{}|\\^`]")
# RFC 3339 date-time: any number of fractional digits, Z or a numeric offset.
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def is_uri(value: object) -> bool:
    """An absolute URI (RFC 3986): a scheme, and a host for http(s)."""
    if not isinstance(value, str):
        return True  # formats only constrain strings
    head = value[:2048] if value.startswith("data:") else value
    if _FORBIDDEN.search(head):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    if not parts.scheme or not _SCHEME.match(parts.scheme):
        return False
    if parts.scheme.lower() in ("http", "https"):
        try:
            return bool(parts.hostname) and (parts.port is None or parts.port > 0)
        except ValueError:  # a port that is not a number
            return False
    return bool(parts.path or parts.netloc)


def is_rfc3339(value: object) -> bool:
    """An RFC 3339 date-time with any number of fractional digits."""
    if not isinstance(value, str):
        return True
    match = _RFC3339.match(value)
    if not match:
        return False
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    return second <= 60


def format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checks("uri")(is_uri)
    checker.checks("date-time")(is_rfc3339)
    return checker
