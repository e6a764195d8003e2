"""API keys as the server keeps them: hashed where compared, masked where shown.

The server only ever compares a prediction's key with the key of a later
request (history, delete, polls, the ledger's grouping), so it stores the key's
hash, never the key. A plain SHA-256 is the right hash here: API keys are long
random secrets, not passwords, so a slow salted hash would add cost and no
safety (GitHub and Stripe store their tokens the same way).
"""

from __future__ import annotations

import functools
import hashlib

__all__ = ["KEY_ID_CHARS", "bearer_key", "key_id", "mask_key"]

KEY_ID_CHARS = 32
"""Hex digits of a key id: 128 bits of SHA-256."""


def bearer_key(authorization: str) -> str:
    """The key in an ``Authorization`` value ``Bearer <key>``; "" for any other.

    The one reading of the header: the API's auth, the wire faults, the record
    proxy and the control token all call it.

    Example:
        >>> bearer_key("bearer  test-key "), bearer_key("Basic abc")
        ('test-key', '')
    """
    scheme, _, key = authorization.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


@functools.lru_cache(maxsize=1024)
def key_id(api_key: str) -> str:
    """The id a key is stored and compared by: the first 32 hex digits of its SHA-256.

    Example:
        >>> key_id("test-key")
        '62af8704764faf8ea82fc61ce9c4c390'
    """
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()[
        :KEY_ID_CHARS
    ]


@functools.lru_cache(maxsize=1024)
def mask_key(api_key: str) -> str:
    """A key as the control API shows it: at most a quarter of it, never more than
    four characters at each end.

    Example:
        >>> mask_key("wsk_live_0123456789abcdef0123456789abcdef")
        'wsk_…cdef'
        >>> mask_key("test-key")
        't…y'
    """
    shown = min(8, len(api_key) // 4)
    head = shown // 2
    tail = shown - head
    return api_key[:head] + "…" + (api_key[-tail:] if tail else "")
