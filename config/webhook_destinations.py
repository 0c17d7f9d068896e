"""Where webhooks may be sent: the checks a customer-chosen URL passes before anything calls it.

A webhook URL is attacker-controlled input that makes our servers send requests (SSRF). So
only ``http`` and ``https``, no credentials in the URL, and every address the host resolves
to must be public: private, loopback, link-local (cloud metadata at 169.254.169.254),
multicast, unspecified, reserved, shared (100.64/10) and IPv6 forms that embed an IPv4 address
(IPv4-mapped, NAT64, 6to4, Teredo) are refused unless an allow-list entry admits them.

The allow-list (``SAMO_WEBHOOK_ALLOWED_DESTINATIONS``) holds IP addresses or networks
(``127.0.0.1``, ``10.8.0.0/16``) and host names (``receiver.internal``) for development and
tests; production leaves it empty. The API checks a URL without DNS when it is registered
(:func:`parse_webhook_url`); the sender resolves it once and connects to the checked
addresses (:func:`check_destination`, ``workers.webhook_http``).

A host is read as an IPv4 address in every spelling the system's resolver accepts without DNS
(``socket.inet_aton``: ``127.1``, ``2130706433``, ``0x7f.1``, ``017700000001``), not only the
dotted quad, so that registration refuses what delivery would connect to.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

ALLOWED_SCHEMES = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048
LOCAL_HOST_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
_IPV4_EMBEDDING_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32",
))


class DestinationRefused(ValueError):
    """The URL may not be called: the reason is safe to show to the endpoint's owner."""


class ResolutionFailed(OSError):
    """The host name did not resolve (perhaps only for now: this one is retried)."""


@dataclass(frozen=True)
class AllowList:
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    host_names: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        networks, names = [], set()
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(normalized_host(entry))
        return cls(tuple(networks), frozenset(names))

    def admits_address(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)

    def admits_host(self, host: str) -> bool:
        return normalized_host(host) in self.host_names


@dataclass(frozen=True)
class ResolvedTarget:
    """A URL that passed the checks, with the addresses the connection may use."""

    url: str
    scheme: str
    host: str
    port: int
    request_target: str
    addresses: tuple[str, ...]


def normalized_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def refusal_reason(address: IPAddress) -> str | None:
    """Why a connection to this address is not allowed by default; None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if any(address in network for network in _IPV4_EMBEDDING_NETWORKS):
            return "an IPv6 address embedding an IPv4 address (NAT64, 6to4, Teredo)"
        if address.is_site_local:
            return "a site-local address"
    checks = (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    )
    for attribute, reason in checks:
        if getattr(address, attribute):
            return reason
    if address in _SHARED_ADDRESS_SPACE or not address.is_global:
        return "a non-public address"
    return None


ALLOW_LIST_HINT = "(allow it with SAMO_WEBHOOK_ALLOWED_DESTINATIONS, for development and tests)"


def check_address(address: IPAddress, allow_list: AllowList) -> None:
    reason = refusal_reason(address)
    if reason and not allow_list.admits_address(address):
        raise DestinationRefused(f"{address} is {reason} {ALLOW_LIST_HINT}")


def parse_webhook_url(url: str, allow_list: AllowList) -> tuple[str, str, int, str]:
    """Checks that need no DNS (also run when a URL is registered): scheme, host, literal IPs."""
    if len(url) > MAX_URL_LENGTH:
        raise DestinationRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise DestinationRefused(f"the URL is malformed: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise DestinationRefused("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("credentials in the URL are not allowed")
    host = normalized_host(parts.hostname or "")
    if not host:
        raise DestinationRefused("the URL has no host")
    if any(ord(c) < 33 or c in "\\%" for c in parts.netloc):
        raise DestinationRefused("the URL's host contains characters that are not allowed")
    if not allow_list.admits_host(host):
        literal = ip_literal(host)
        if literal is not None:
            check_address(literal, allow_list)
        elif host in LOCAL_HOST_NAMES or host.endswith(".localhost"):
            raise DestinationRefused(f"{host} is a local host name {ALLOW_LIST_HINT}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or ALLOWED_SCHEMES[scheme], target


def ip_literal(host: str) -> IPAddress | None:
    """The address a host spells without DNS: an IPv6 literal, or IPv4 as ``inet_aton`` reads it."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise ResolutionFailed(f"{host} did not resolve: {error}") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


def check_destination(url: str, allow_list: AllowList, resolver: Resolver = system_resolver) -> ResolvedTarget:
    """Resolve the host once and refuse the URL if any address it names is not allowed.

    Every address must pass, not just one: otherwise a name answering with one public and one
    internal address would let the connection land on the internal one.
    """
    scheme, host, port, request_target = parse_webhook_url(url, allow_list)
    literal = ip_literal(host)
    raw_addresses = [str(literal)] if literal is not None else resolver(host, port)
    if not raw_addresses:
        raise ResolutionFailed(f"{host} resolved to no address")
    addresses = []
    for raw in raw_addresses:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        if not allow_list.admits_host(host):
            check_address(address, allow_list)
        addresses.append(str(address))
    return ResolvedTarget(url, scheme, host, port, request_target, tuple(addresses))
