"""The upstream a recording proxies to: forwarding requests, downloading outputs.

httpx does the HTTP; this module adds the proxy's rules: which headers travel
(the client's own key goes upstream, nothing of the mock's), how long anything
may take, how large an output may be, and which hosts an output may be fetched
from (the upstream's own, or a public address: never an internal one).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from ...core.network import (
    AddressRule,
    DestinationRefused,
    UnresolvedHost,
    internal_kind,
    pinned_request,
    resolve_checked,
    system_resolver,
)

__all__ = ["Download", "DownloadError", "Upstream", "UpstreamAnswer", "UpstreamError"]

# Headers a client's request carries upstream; everything else stays here.
FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "accept", "user-agent")
# Headers of the upstream answer handed back to the client.
FORWARDED_ANSWER_HEADERS = ("content-type", "retry-after")


class UpstreamError(Exception):
    """The upstream could not be reached or did not answer in time."""


class DownloadError(Exception):
    """An output could not be stored: refused address, too large, unreachable."""


@dataclass(frozen=True)
class UpstreamAnswer:
    status: int
    headers: dict[str, str]
    content: bytes


@dataclass(frozen=True)
class Download:
    content: bytes
    sha256: str


class Upstream:
    """The API a recording proxies to, e.g. ``https://api.wavespeed.ai``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 300.0,
        max_output_bytes: int = 256 * 1024 * 1024,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"upstream {base_url!r} is not an http(s) URL; "
                "pass e.g. --upstream https://api.wavespeed.ai"
            )
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname.lower()
        self.max_output_bytes = max_output_bytes
        self._client = httpx.AsyncClient(
            # Reads may wait long (a sync-mode submit waits for its task upstream);
            # connecting may not.
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            follow_redirects=False,
            transport=transport,
        )

    async def forward(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> UpstreamAnswer:
        """Send one request upstream as the client sent it (its own key included).

        Raises:
            UpstreamError: the upstream cannot be reached or times out.
        """
        url = self.base_url + path + (f"?{query}" if query else "")
        sent = {k: v for k, v in headers.items() if k in FORWARDED_REQUEST_HEADERS}
        try:
            answer = await self._client.request(method, url, headers=sent, content=body)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{method} {self.base_url}{path}: {exc!r}") from None
        kept = {
            k: v for k, v in answer.headers.items() if k in FORWARDED_ANSWER_HEADERS
        }
        return UpstreamAnswer(answer.status_code, kept, answer.content)

    async def download(self, url: str) -> Download:
        """An output file, no larger than ``max_output_bytes``.

        Raises:
            DownloadError: not http(s), an internal address other than the
                upstream's own host, too large, or unreachable.
        """
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise DownloadError(f"output URL {url!r} is not http(s)")
        digest = hashlib.sha256()
        chunks: list[bytes] = []
        size = 0
        try:
            answer = await self._open(parts)
            try:
                if answer.status_code != 200:
                    raise DownloadError(f"GET {url} answered HTTP {answer.status_code}")
                async for chunk in answer.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_output_bytes:
                        raise DownloadError(
                            f"output {url} is over the {self.max_output_bytes:,}-byte "
                            "limit (--record-max-output-bytes)"
                        )
                    digest.update(chunk)
                    chunks.append(chunk)
            finally:
                await answer.aclose()
        except httpx.HTTPError as exc:
            raise DownloadError(f"GET {url}: {exc!r}") from None
        return Download(b"".join(chunks), digest.hexdigest())

    async def _open(self, url: SplitResult) -> httpx.Response:
        """A streamed GET of an output: the upstream's own host as configured;
        any other host only at a public address, connected to the very address
        that was checked (the server's one address rule, ``core.network``)."""
        host = (url.hostname or "").lower()
        if host == self.host:
            return await self._client.send(
                self._client.build_request("GET", urlunsplit(url)), stream=True
            )
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = await resolve_checked(host, port, _PUBLIC_ONLY, system_resolver)
        except (DestinationRefused, UnresolvedHost) as exc:
            raise DownloadError(
                f"output host {host!r} is not the upstream's host {self.host!r} and "
                f"not a public address ({exc}); it was not fetched"
            ) from None
        response: httpx.Response = await pinned_request(
            self._client, "GET", url, addresses
        )
        return response

    async def aclose(self) -> None:
        await self._client.aclose()


_PUBLIC_ONLY = AddressRule(default=internal_kind)
"""Outputs on other hosts than the upstream's: public addresses only, no exception."""
