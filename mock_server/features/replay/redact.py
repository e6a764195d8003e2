"""Redaction: what a cassette must never hold.

A recording is meant to be committed, so nothing that grants access is written:

- API keys: the ``Authorization`` header is never stored, and every key a client
  sent through the proxy is scrubbed from every stored string (an error message
  that echoes it included);
- webhook secrets (``whsec_...``) and webhook signatures (``v3,<hex>``);
- URL query parameters that carry credentials (signed CDN links:
  ``Signature``, ``X-Amz-Credential``, ``token``, ``key``, ...).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = ["REDACTED", "Redactor", "strip_query"]

REDACTED = "<redacted>"
_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=_\-]+")
_SIGNATURE = re.compile(r"\bv\d,[0-9a-fA-F]{32,}")
_URL = re.compile(r"https?://[^\s\"'<>]+")
_CREDENTIAL_PARAM = re.compile(
    r"sig|token|key|secret|credential|auth|policy|password", re.IGNORECASE
)


def strip_query(url: str) -> str:
    """``url`` without its query string and fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class Redactor:
    """Scrubs secrets out of values before they are written to a cassette."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def learn(self, secret: str) -> None:
        """Remember a secret seen in a request (an API key) to scrub it everywhere."""
        secret = secret.strip()
        if len(secret) >= 4:  # shorter strings would scrub ordinary words
            self._secrets.add(secret)

    def scrub(self, value: Any) -> Any:
        """A copy of ``value`` (JSON) with every secret replaced by ``<redacted>``."""
        if isinstance(value, str):
            return self._scrub_text(value)
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        return value

    def _scrub_text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _SECRET.sub("whsec_" + REDACTED, text)
        text = _SIGNATURE.sub(REDACTED, text)
        if "?" in text:
            text = _URL.sub(_scrub_url, text)
        return text


def _scrub_url(match: re.Match[str]) -> str:
    url = match.group(0)
    query = urlsplit(url).query
    if any(_CREDENTIAL_PARAM.search(k) for k, _ in parse_qsl(query)):
        return strip_query(url) + "?" + REDACTED
    return url
