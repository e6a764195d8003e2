"""Fetching a remote image, only when enabled (``--fetch-remote-images``), safely.

The URL is a client's choice, so the fetch must not become a way into the
machine's own network (server-side request forgery):

- each hop's host is resolved and judged (:mod:`.network`): loopback,
  link-local, private, multicast and reserved addresses are refused unless
  ``Settings.fetch_allow`` names the host, the address or its network; the
  connection goes to the address that was judged;
- redirects are followed by hand (at most :data:`MAX_REDIRECTS`), each target
  judged again;
- one deadline (:data:`FETCH_DEADLINE_S`) covers the whole fetch, resolving,
  connecting, every redirect and every read, and one byte bound
  (:data:`FETCH_MAX_BYTES`) the whole body: a server that drips a byte at a
  time is cut at the deadline, not after each slow read;
- what went wrong after the address was judged (a refused connection, an HTTP
  error, a timeout, bytes that are no image) reaches the client as one and the
  same message, so a task's error cannot tell an open port from a closed one;
  the detail goes to the server's log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

from ...contracts.errors import WavespeedMockError
from .network import (
    AddressRule,
    DestinationRefused,
    Resolver,
    UnresolvedHost,
    internal_kind,
    pinned_request,
    resolve_checked,
    system_resolver,
)

__all__ = [
    "FETCH_DEADLINE_S",
    "FETCH_MAX_BYTES",
    "MAX_REDIRECTS",
    "FetchFailed",
    "FetchRefused",
    "RemoteFetcher",
]

log = logging.getLogger("wavespeed_mock.server")

FETCH_DEADLINE_S = 10.0
FETCH_MAX_BYTES = 30 * 1024 * 1024
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class FetchRefused(WavespeedMockError, PermissionError):
    """The URL (or a redirect) leads to an address the server may not reach."""


class FetchFailed(WavespeedMockError, OSError):
    """The fetch was allowed and did not give the bytes; ``detail`` says why
    (for the log: the client sees one message whatever the cause)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class RemoteFetcher:
    """Fetches image URLs within an address rule, one deadline and one byte bound.

    Example:
        >>> fetcher = RemoteFetcher(allow=("10.0.0.0/8",))
        >>> data = fetcher.fetch("https://images.example.com/cat.png")
    """

    def __init__(
        self,
        *,
        allow: Iterable[str] = (),
        deadline_s: float = FETCH_DEADLINE_S,
        max_bytes: int = FETCH_MAX_BYTES,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.rule = AddressRule(allow=allow, default=internal_kind)
        self.deadline_s = deadline_s
        self.max_bytes = max_bytes
        self.resolver = resolver

    def fetch(self, url: str) -> bytes:
        """The body of ``url`` (blocking: a render worker calls it).

        Raises:
            FetchRefused: the URL or a redirect leads where the rule refuses.
            FetchFailed: anything else.
        """
        try:
            return asyncio.run(asyncio.wait_for(self._fetch(url), self.deadline_s))
        except asyncio.TimeoutError:
            raise FetchFailed(
                f"the whole download took longer than {self.deadline_s:g} s"
            ) from None

    async def _fetch(self, url: str) -> bytes:
        import httpx

        # No per-operation timeouts: the one deadline in fetch() bounds the
        # whole, and a shorter per-read timeout would only race it.
        async with httpx.AsyncClient(
            timeout=None, follow_redirects=False, trust_env=False
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                parts = urlsplit(url)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    raise FetchRefused(f"{url[:200]!r} is not an http(s) URL")
                try:
                    port = parts.port or (443 if parts.scheme == "https" else 80)
                    addresses = await resolve_checked(
                        parts.hostname, port, self.rule, self.resolver
                    )
                except DestinationRefused as exc:
                    raise FetchRefused(exc.reason) from None
                except (UnresolvedHost, ValueError) as exc:
                    raise FetchFailed(str(exc)) from None
                try:
                    response = await pinned_request(
                        client,
                        "GET",
                        parts,
                        addresses,
                        # Raw bytes are read and bounded; nothing is decompressed.
                        headers={"Accept-Encoding": "identity"},
                    )
                except httpx.HTTPError as exc:
                    raise FetchFailed(
                        f"{exc.__class__.__name__} from {parts.hostname}"
                    ) from None
                try:
                    if response.status_code in REDIRECT_STATUSES:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchFailed("a redirect without a Location")
                        url = urljoin(url, location)
                        continue
                    if response.status_code != 200:
                        raise FetchFailed(f"HTTP {response.status_code}")
                    return await self._read(response)
                finally:
                    await response.aclose()
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")

    async def _read(self, response: object) -> bytes:
        import httpx

        assert isinstance(response, httpx.Response)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchFailed(f"Content-Length {declared} over {self.max_bytes} bytes")
        chunks: list[bytes] = []
        total = 0
        try:
            async for chunk in response.aiter_raw():
                total += len(chunk)
                if total > self.max_bytes:
                    raise FetchFailed(f"the body is over {self.max_bytes} bytes")
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise FetchFailed(f"{exc.__class__.__name__} while reading") from None
        return b"".join(chunks)
