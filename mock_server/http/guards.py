"""What keeps a web page from driving the mock: the Host and control-API rules.

The server listens on loopback, where any web page open in the developer's
browser can reach it. Two rules, in one middleware in front of every route:

- **Host** (the whole server): the ``Host`` header must be a loopback name
  (``localhost``, ``*.localhost``) or address, the host of the public URL, the
  bound address, or one of ``Settings.allowed_hosts``. A DNS-rebinding page
  reaches 127.0.0.1 under its own name, so its requests carry that name and are
  refused (403 in the envelope), as development servers (Vite, webpack, Django)
  refuse them.
- **Control API** (``/_mock``): with ``Settings.control_token`` set, every
  route but health and the documents needs ``Authorization: Bearer <token>``
  (401); a request that changes state (any method but GET, HEAD, OPTIONS) must
  come from no foreign ``Origin`` (403), and one with a body (POST, PUT, PATCH)
  must say ``Content-Type: application/json`` (415). A cross-site page can send
  a ``text/plain`` or form POST without asking (no CORS preflight); it cannot
  send JSON without one, and this server answers no preflight.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.keys import bearer_key
from ..settings import CONTROL_PREFIX, Settings
from .responses import error_response

__all__ = ["HostRule", "RequestGuardMiddleware", "host_of"]

log = logging.getLogger("wavespeed_mock.server")

WILDCARD_BIND = frozenset({"", "0.0.0.0", "::"})
# Control routes anyone may read: a health probe and the public contract.
OPEN_CONTROL_PATHS = (f"{CONTROL_PREFIX}/health", f"{CONTROL_PREFIX}/documents/")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
DEFAULT_PORTS = {"http": "80", "https": "443"}
_LOGGED_HOSTS_MAX = 64


def host_of(authority: str) -> str:
    """The host of a ``Host`` header or URL authority, lower-case, without port,
    brackets or a trailing dot: ``[::1]:8000`` -> ``::1``."""
    text = authority.strip().lower()
    if text.startswith("["):
        host = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        host = text.partition(":")[0]
    else:
        host = text
    return host.rstrip(".")


def _is_loopback_address(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class HostRule:
    """The Host names one server answers to.

    Example:
        >>> rule = HostRule.from_settings(Settings(public_url="https://mock.test"))
        >>> rule.allows("127.0.0.1:8000"), rule.allows("mock.test"), rule.allows("evil.test")
        (True, True, False)
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names = frozenset(host_of(n) for n in names if n.strip())

    @classmethod
    def from_settings(cls, settings: Settings) -> HostRule:
        names = [*settings.allowed_hosts]
        if settings.tls:  # serving as the real API's host (serve --tls)
            names.append("api.wavespeed.ai")
        if settings.public_url:
            names.append(urlsplit(settings.public_url).netloc)
        if settings.host not in WILDCARD_BIND:
            names.append(settings.host)
        return cls(names)

    def allows(self, authority: str) -> bool:
        """Whether a ``Host`` header's value is served."""
        host = host_of(authority)
        if "*" in self.names or host in self.names:
            return True
        # RFC 6761 6.3: localhost and every name under it are loopback.
        return (
            host in ("localhost",)
            or host.endswith(".localhost")
            or (_is_loopback_address(host))
        )

    def describe(self) -> str:
        extra = ", ".join(sorted(self.names))
        return "loopback names and addresses (localhost, 127.0.0.1, ::1)" + (
            f" and {extra}" if extra else ""
        )


def _origin_key(scheme: str, authority: str) -> str:
    host_port = authority.strip().lower().rstrip("/")
    default = DEFAULT_PORTS.get(scheme.lower())
    if default and host_port.endswith(":" + default):
        host_port = host_port[: -len(default) - 1]
    return f"{scheme.lower()}://{host_port}"


class RequestGuardMiddleware:
    """The Host rule for every request; the control API's token, Origin and
    content-type rules for ``/_mock`` (see the module doc)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = HostRule.from_settings(settings)
        self.token = settings.control_token or None  # "" is no token
        self.own_origins = frozenset(
            _origin_key(p.scheme, p.netloc)
            for p in [urlsplit(settings.public_url or settings.base_url)]
            if p.scheme and p.netloc
        )
        self._logged: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
        }
        problem = self._host_problem(headers)
        path: str = scope["path"]
        if problem is None and (
            path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")
        ):
            problem = self._control_problem(scope, path, headers)
        if problem is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        status, message = problem
        await error_response(status, message)(scope, receive, send)

    def _host_problem(self, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host")
        # No Host at all is an HTTP/1.0 client, never a browser.
        if host is None or self.hosts.allows(host):
            return None
        shown = host_of(host)[:100]
        if len(self._logged) < _LOGGED_HOSTS_MAX and shown not in self._logged:
            self._logged.add(shown)
            log.warning("refused a request for Host %r (not served here)", shown)
        return 403, (
            f"Forbidden: Host {shown!r} is not served here (a defence against DNS "
            f"rebinding). This server answers {self.hosts.describe()}; to serve "
            f"this name start it with --allowed-host {shown} "
            "(WAVESPEED_MOCK_ALLOWED_HOSTS) or --public-url"
        )

    def _control_problem(
        self, scope: Scope, path: str, headers: dict[str, str]
    ) -> tuple[int, str] | None:
        method: str = scope.get("method", "GET")
        if self.token is not None and not path.startswith(OPEN_CONTROL_PATHS):
            given = bearer_key(headers.get("authorization", ""))
            if not given or not hmac.compare_digest(
                given.encode(), self.token.encode()
            ):
                return 401, (
                    "Unauthorized: the control API needs its token; send "
                    "'Authorization: Bearer <control token>' (the server's "
                    "--control-token, WAVESPEED_MOCK_CONTROL_TOKEN)"
                )
        if method in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        fetch_site = headers.get("sec-fetch-site", "").lower()
        if origin is not None and not self._own_origin(scope, origin, headers):
            return 403, (
                f"Forbidden: a control request from Origin {origin[:100]!r}; the "
                "control API takes no requests from other web pages"
            )
        if origin is None and fetch_site in ("cross-site", "same-site"):
            return 403, (
                f"Forbidden: a {fetch_site} control request; the control API takes "
                "no requests from other web pages"
            )
        if method in BODY_METHODS and not _bodiless(headers):
            # A request without a body holds nothing to smuggle, and a browser's
            # bodiless POST carries an Origin, judged above.
            media_type = headers.get("content-type", "").partition(";")[0].strip()
            if media_type.lower() != "application/json":
                return 415, (
                    f"Unsupported media type: {media_type or 'none'!r}; control "
                    "requests send a JSON body with 'Content-Type: application/json'"
                )
        return None

    def _own_origin(self, scope: Scope, origin: str, headers: dict[str, str]) -> bool:
        parts = urlsplit(origin.strip())
        if not parts.scheme or not parts.netloc:
            return False  # "null": a sandboxed frame, a file: page
        key = _origin_key(parts.scheme, parts.netloc)
        if key in self.own_origins:
            return True
        scheme = scope.get("scheme", "http")
        return key == _origin_key(scheme, headers.get("host", ""))


def _bodiless(headers: dict[str, str]) -> bool:
    """No body and no type: ``Content-Length: 0`` or neither length nor chunks."""
    if "content-type" in headers:
        return False
    length = headers.get("content-length")
    if length is not None:
        return length.strip() == "0"
    return "transfer-encoding" not in headers
