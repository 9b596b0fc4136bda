"""The crawler's guard against server-side request forgery: it only ever connects to public addresses.

Every TCP connection the crawler opens goes through `GuardedBackend`: it resolves the host itself,
refuses the connection when any address it resolves to is loopback, private, link-local, multicast,
reserved, unspecified or otherwise not publicly routable (IPv4, IPv6, and IPv4 carried inside IPv6:
mapped, NAT64, 6to4), and then connects to exactly the addresses it checked. So a redirect hop, a
robots.txt or a sitemap URL cannot reach an internal service, and a DNS answer that changes between
the check and the connection (rebinding) changes nothing. TLS still names the host (SNI and
certificate checks use the URL's host) and the Host header is the URL's.

Sites that really live on such addresses (TalIA's own demo site in development, an intranet) are
let through by an explicit allow-list of `host[:port]` entries, matched against the URL's host as
written (a name or an IP literal); an entry without a port allows every port of that host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpcore2
import httpx2
from httpcore2 import SOCKET_OPTION, AnyIOBackend, AsyncNetworkBackend, AsyncNetworkStream

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AllowList = frozenset[tuple[str, int | None]]

# NAT64's well-known prefix: an IPv6-only network reaches IPv4 hosts through it, so judge the IPv4 inside.
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


class ForbiddenAddress(Exception):
    """The crawler refused to connect: the host is not on a public address, and not allow-listed."""


def parse_allow_hosts(entries: Iterable[str]) -> AllowList:
    """`host[:port]` entries (IPv6 literals in brackets when a port follows) as (host, port or None).

    Raises ValueError naming a malformed entry.
    """
    allowed: set[tuple[str, int | None]] = set()
    for entry in entries:
        text = entry.strip().lower()
        try:
            allowed.add((str(ipaddress.ip_address(text.strip("[]"))), None))  # a bare IP literal, IPv6 too
            continue
        except ValueError:
            pass
        try:
            parts = urlsplit(f"//{text}")
            host, port = parts.hostname, parts.port
        except ValueError:
            host = port = None
        if not host or parts.path or parts.query or parts.username or parts.password:
            raise ValueError(f"not a host[:port]: {entry!r}")
        allowed.add((_canonical_host(host), port))
    return frozenset(allowed)


def _canonical_host(host: str) -> str:
    """IP literals in their compressed form, so "::FFFF:7F00:1" and "::ffff:127.0.0.1" match; names lowercased."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower().rstrip(".")


def is_allowed(allow: AllowList, host: str, port: int) -> bool:
    host = _canonical_host(host)
    return (host, None) in allow or (host, port) in allow


def forbidden_reason(address: IPAddress) -> str:
    """Why the crawler must not connect to `address` ("... is a loopback address"), or "" when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped
        if embedded is None and address in NAT64_PREFIX:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:  # the connection really goes to the IPv4 address inside
            inner = forbidden_reason(embedded)
            return f"{inner} (written {address})" if inner else ""
        if address.sixtofour is not None and forbidden_reason(address.sixtofour):
            return f"{forbidden_reason(address.sixtofour)} (inside the 6to4 address {address})"
    for kind, matches in (
        ("an unspecified", address.is_unspecified),
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a reserved", address.is_reserved),
        ("a private", address.is_private),
        ("a non-public", not address.is_global),
    ):
        if matches:
            return f"{address} is {kind} address"
    return ""


async def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to for a TCP connection, in the resolver's order, without duplicates."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(AsyncNetworkBackend):
    """httpcore's network backend with the address check in front of every TCP connection."""

    def __init__(self, allow: AllowList) -> None:
        self.allow = allow
        self._inner = AnyIOBackend()  # the crawler runs on asyncio

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        addresses = await resolve(host, port)
        if not is_allowed(self.allow, host, port):
            for address in addresses:
                reason = forbidden_reason(ipaddress.ip_address(address))
                if reason:
                    literal = _canonical_host(host) == str(ipaddress.ip_address(address))
                    entry = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                    raise ForbiddenAddress(
                        f"refused: {'' if literal else f'{host} resolves to '}{reason}; "
                        f"add {entry} to TALIA_CRAWL_ALLOW_HOSTS if it is yours"
                    )
        last_error: Exception = httpcore2.ConnectError(f"{host} has no address")
        for address in addresses:  # the checked addresses themselves, never a second lookup
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                last_error = exc
        raise last_error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SOCKET_OPTION] | None = None
    ) -> AsyncNetworkStream:
        raise ForbiddenAddress("refused: the crawler does not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose every connection passes `GuardedBackend`."""

    def __init__(self, allow: AllowList, *, max_connections: int) -> None:
        # No proxy from the environment: a proxy would make the connection, out of the guard's sight.
        super().__init__(trust_env=False, limits=httpx2.Limits(max_connections=max_connections))
        # httpx offers no way to hand its pool a network backend; its request handling reads `_pool`.
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            network_backend=GuardedBackend(allow),
        )
