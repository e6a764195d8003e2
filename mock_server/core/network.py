"""Which addresses the server may reach for a client, and how it gets there.

A client picks the URLs the server fetches (a remote image) and posts to (a
webhook). Each use is judged on the addresses the URL's host resolves to at the
moment of the request, by an :class:`AddressRule`, and the connection then goes
to an address that was judged (:func:`pinned_request`): the URL is rewritten to
that address while the ``Host`` header and the TLS server name keep the original
host, so a name that answers differently a moment later (DNS rebinding) changes
nothing. No proxy from the environment is used (``trust_env=False``): a proxy
would connect on its own terms.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import SplitResult, urlunsplit

from ...contracts.errors import WavespeedMockError

__all__ = [
    "AddressRule",
    "DestinationRefused",
    "IPAddress",
    "Resolver",
    "UnresolvedHost",
    "internal_kind",
    "pinned_request",
    "resolve_checked",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses as text``; tests hand in a fake one."""

# getaddrinfo blocks and cannot be cancelled; a pool of its own keeps a slow
# resolver from holding the event loop's default executor (which asyncio.run
# waits for at exit) past a fetch's deadline.
_RESOLVER_POOL = concurrent.futures.ThreadPoolExecutor(
    max_workers=4, thread_name_prefix="wavespeed-mock-resolve"
)


class DestinationRefused(WavespeedMockError, PermissionError):
    """The URL's host resolves only to addresses the rule refuses."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnresolvedHost(WavespeedMockError, OSError):
    """The URL's host name does not resolve."""


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the system's order of preference."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def internal_kind(address: IPAddress) -> str | None:
    """What makes an address internal (``"loopback"``, ``"private"``, ...), or
    None for a public one. An IPv4 address inside IPv6 (mapped, 6to4, Teredo)
    is judged as the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if address.teredo is not None:
            inner = address.teredo[1]
        if inner is not None:
            return internal_kind(inner)
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        # Shared address space (100.64.0.0/10), documentation ranges and the like.
        ("non-public", not address.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


class AddressRule:
    """Which resolved addresses one use of the network accepts.

    ``allow`` entries are host names (matched against the URL's host, whatever
    it resolves to), addresses, networks in CIDR form, or ``*`` (anything).
    Everything else is judged by ``default``, which names why an address is
    refused or returns None.

    Example:
        >>> rule = AddressRule(allow=("10.0.0.0/8",), default=internal_kind)
        >>> rule.refusal("intranet", ipaddress.ip_address("10.1.2.3")) is None
        True
    """

    def __init__(
        self,
        *,
        allow: Iterable[str] = (),
        default: Callable[[IPAddress], str | None],
    ) -> None:
        self.default = default
        self.anything = False
        names: set[str] = set()
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow:
            text = entry.strip().lower().strip("[]").rstrip(".")
            if not text:
                continue
            if text == "*":
                self.anything = True
                continue
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                names.add(text)
        self.names = frozenset(names)
        self.networks = tuple(networks)

    def allows_name(self, host: str) -> bool:
        return self.anything or host.lower().rstrip(".") in self.names

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why ``address`` (which ``host`` resolved to) is refused, or None."""
        if self.allows_name(host):
            return None
        plain = address
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            plain = address.ipv4_mapped
        if any(plain in network for network in self.networks):
            return None
        return self.default(address)


def _parse(text: str) -> IPAddress:
    # getaddrinfo names an IPv6 link-local address with its zone: fe80::1%eth0.
    return ipaddress.ip_address(text.partition("%")[0])


async def resolve_checked(
    host: str, port: int, rule: AddressRule, resolver: Resolver
) -> list[str]:
    """The addresses of ``host`` that ``rule`` accepts, best first.

    Raises:
        UnresolvedHost: the name does not resolve.
        DestinationRefused: it resolves, but to no address the rule accepts.
    """
    try:
        literal: str | None = str(_parse(host))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    elif rule.anything:
        addresses = []  # any address will do: let the connection resolve it
    else:
        loop = asyncio.get_running_loop()
        try:
            addresses = list(
                await loop.run_in_executor(_RESOLVER_POOL, resolver, host, port)
            )
        except (OSError, UnicodeError) as exc:
            raise UnresolvedHost(f"{host!r} does not resolve ({exc})") from None
        if not addresses:
            raise UnresolvedHost(f"{host!r} resolves to no address")
    if rule.anything:
        return addresses or [host]
    permitted: list[str] = []
    refusals: list[str] = []
    for text in addresses:
        try:
            address = _parse(text)
        except ValueError:
            continue
        why = rule.refusal(host, address)
        if why is None:
            permitted.append(text)
        else:
            refusals.append(f"{address} ({why})")
    if not permitted:
        raise DestinationRefused(
            f"{host} resolves to {', '.join(refusals) or 'no usable address'}"
        )
    return permitted


def _pinned_url(url: SplitResult, address: str) -> str:
    host = address
    try:
        if _parse(address).version == 6:
            host = "[" + address.replace("%", "%25") + "]"
    except ValueError:
        pass  # a name: the rule accepts anything, let the connection resolve it
    netloc = host if url.port is None else f"{host}:{url.port}"
    return urlunsplit((url.scheme, netloc, url.path or "/", url.query, ""))


async def pinned_request(
    client: Any,
    method: str,
    url: SplitResult,
    addresses: Sequence[str],
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> Any:
    """Send a request to the first of ``addresses`` that answers, as to ``url``.

    ``client`` is an ``httpx.AsyncClient`` made with ``trust_env=False`` and no
    redirects; the response is returned unread (streamed), to be closed by the
    caller. The ``Host`` header and the TLS server name (``sni_hostname``, which
    is also the name the certificate is checked against) stay ``url``'s host.

    Raises:
        httpx.HTTPError: no address answered (the last address's error).
    """
    import httpx

    host_header = url.netloc.rpartition("@")[2]
    extensions: dict[str, Any] = {}
    if url.scheme == "https" and url.hostname:
        extensions["sni_hostname"] = url.hostname
    last: Exception | None = None
    for address in addresses:
        request = client.build_request(
            method,
            _pinned_url(url, address),
            headers={**(headers or {}), "Host": host_header},
            content=content,
            extensions=extensions,
        )
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            last = exc
    assert last is not None  # resolve_checked never returns an empty list
    raise last
