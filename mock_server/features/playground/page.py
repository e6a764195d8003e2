"""The playground page's rules: its files, its security headers, what it is told.

The page is static (HTML, CSS, JavaScript shipped in ``static/`` as package
data); everything it shows it asks the server for: the models and their request
schemas from ``GET /api/v3/models`` (the contract's, never restated in the
page), the prediction routes and the control API. No build step and no library: the page is a
few hundred lines of plain JavaScript, so a vendored framework would add more
than it saves.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from urllib.parse import urlsplit

__all__ = [
    "ASSET_TYPES",
    "PAGE_PATHS",
    "PLAYGROUND_PREFIX",
    "asset_bytes",
    "page_headers",
]

PLAYGROUND_PREFIX = "/playground"
PAGE_PATHS = ("/", PLAYGROUND_PREFIX)
"""Where the page itself is served."""
ASSET_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
}
"""The only files served, by name: nothing else in the package can be asked for."""


@cache
def asset_bytes(name: str) -> bytes:
    """A static file's bytes (``name`` must be one of :data:`ASSET_TYPES`).

    Raises:
        LookupError: for any other name.
    """
    if name not in ASSET_TYPES:
        raise LookupError(f"no playground asset {name!r}; known: {sorted(ASSET_TYPES)}")
    return resources.files(__package__).joinpath("static").joinpath(name).read_bytes()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def page_headers(base_url: str) -> dict[str, str]:
    """Security headers of every playground answer.

    Scripts only from this server, never inline (``script-src 'self'``, no
    ``unsafe-inline``); no framing; requests only to this server. The base URL's
    origin is allowed beside ``'self'`` because the server hands out clip and
    upload URLs under it, which may differ from the address the browser used
    (``localhost`` against ``127.0.0.1``).
    """
    extra = _origin(base_url)
    own = f"'self' {extra}".strip()
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {own} blob: data:",
            f"media-src {own} blob:",
            f"connect-src {own}",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
