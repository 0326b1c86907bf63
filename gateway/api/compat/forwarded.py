"""The scheme and Host a client called, behind a TLS-terminating proxy or ingress. Pure.

Behind a proxy, the socket says ``http`` and the Host the proxy chose; the client called, say,
``https://team-a.lakegate.example``. The facade needs the client's own: the Host chooses the
namespace (``callers.namespace_host_pattern``) and ``/.well-known/databricks-config`` names
URLs the client follows back. Proxies say it in RFC 7239's ``Forwarded`` or in the older
``X-Forwarded-Host`` / ``X-Forwarded-Proto`` (with ``X-Forwarded-For``); either is read only
when the socket's peer is in ``server.trusted_proxies``. From any other peer they are ignored,
so a client cannot make its own Host header say something else.

Each proxy appends a hop: the one nearest lakegate last. The hops are read from the right for
as long as the proxy that added one is trusted (the peer added the last; a hop's ``for`` names
the proxy that added the one before it), and the hop reached says what its proxy's client
called. A value that is not a host name (with an optional port) or ``http``/``https`` is
ignored. ``Forwarded`` wins over the ``X-Forwarded-*`` headers when a request has both.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Hop", "Origin", "Proxies", "forwarded_hops", "public_origin", "x_forwarded_hops"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_HOST_RE = re.compile(r"^(?:[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?|\[[0-9a-f:.]+\])(?::\d{1,5})?\Z")
_SCHEMES = frozenset({"http", "https"})
# An element of Forwarded: pairs separated by ';', a value a token or a quoted string.
_PAIR_RE = re.compile(r'\s*([A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*')


@dataclass(frozen=True, slots=True)
class Origin:
    """What the client called: ``scheme://host``, the Host with its port if it sent one."""

    scheme: str
    host: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"


@dataclass(frozen=True, slots=True)
class Hop:
    """One proxy's account: who called it (``for``), and the Host and scheme it was called at."""

    for_: str | None = None
    host: str | None = None
    proto: str | None = None


class Proxies:
    """``server.trusted_proxies``: the peers whose forwarded headers are believed."""

    def __init__(self, networks: Sequence[IPNetwork]) -> None:
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str | None) -> bool:
        """Whether ``address`` (an IP, possibly ``[v6]:port`` or ``v4:port``) is trusted."""
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self._networks)


def _ip(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not address:
        return None
    text = address.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None  # "unknown", an obfuscated "_node" or garbage: never a trusted proxy
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",")]


def forwarded_hops(values: Sequence[str]) -> list[Hop]:
    """RFC 7239 ``Forwarded`` headers as hops, oldest first; a malformed element is a hop
    that says nothing (it still counts, so that no hop to its left is believed instead)."""
    hops = []
    for element in _elements(",".join(values)):
        pairs: dict[str, str] = {}
        for part in _quoted_split(element, ";"):
            match = _PAIR_RE.fullmatch(part)
            if match is None:
                pairs = {}
                break
            value = match.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            pairs.setdefault(match.group(1).lower(), value)
        hops.append(Hop(pairs.get("for"), pairs.get("host"), pairs.get("proto")))
    return hops


def _elements(text: str) -> list[str]:
    return [element for element in _quoted_split(text, ",") if element.strip()]


def _quoted_split(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def x_forwarded_hops(
    for_values: Sequence[str], host_values: Sequence[str], proto_values: Sequence[str]
) -> list[Hop]:
    """``X-Forwarded-For/-Host/-Proto`` as hops, oldest first, their lists aligned at the
    right (where the nearest proxy writes): a proxy that sets a single X-Forwarded-Host
    while X-Forwarded-For grows gives it to the nearest hop."""
    fors, hosts, protos = _split(for_values), _split(host_values), _split(proto_values)
    count = max(len(fors), len(hosts), len(protos))

    def at(values: list[str], index: int) -> str | None:
        offset = index - (count - len(values))
        return (values[offset] or None) if offset >= 0 else None

    return [Hop(at(fors, i), at(hosts, i), at(protos, i)) for i in range(count)]


def _valid_host(value: str | None) -> str | None:
    if value is None:
        return None
    host = value.strip().lower()
    return host if _HOST_RE.match(host) else None


def _valid_scheme(value: str | None) -> str | None:
    scheme = (value or "").strip().lower()
    return scheme if scheme in _SCHEMES else None


def public_origin(
    peer: str | None, socket_origin: Origin, hops: Sequence[Hop], proxies: Proxies
) -> Origin:
    """What the client called: the hops' account when ``peer`` is a trusted proxy, else
    what the socket says."""
    if not hops or not proxies.trusts(peer):
        return socket_origin
    index = len(hops) - 1
    while index > 0 and proxies.trusts(hops[index].for_):
        index -= 1
    # The reached hop's own values first; a value only nearer proxies wrote (a single
    # X-Forwarded-Host beside a longer X-Forwarded-For) is theirs to give.
    believed = hops[index:]
    host = next((h for h in (_valid_host(b.host) for b in believed) if h), None)
    scheme = next((s for s in (_valid_scheme(b.proto) for b in believed) if s), None)
    return Origin(scheme or socket_origin.scheme, host or socket_origin.host)
