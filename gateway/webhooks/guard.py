"""The URL guard: where a webhook may go (SSRF), parsed purely and enforced at connection time.

A URL is refused when its scheme is not https (unless ``allow_http``) or its host, however it
is spelled (dotted, decimal ``2130706433``, hex ``0x7f000001``, octal ``0177.0.0.1``, short
``127.1``, IPv4-mapped IPv6 ``[::ffff:127.0.0.1]``), is an address in a refused range:
loopback, link-local, private, CGNAT, multicast, unspecified, reserved, unless it lies in one
of the operator's ``allow_networks``. A host name is checked on every connection by
``gateway.webhooks.resolver.GuardedResolver``: every address the name resolves to must
pass, and the connection uses only those addresses, so a DNS answer that changes after a
URL was accepted (rebinding) cannot reach inside the network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Checked in order; the first that holds names the refusal. Why each: loopback and link-local
# reach this host and cloud metadata (169.254.169.254); private and CGNAT reach the operator's
# networks; multicast, unspecified and reserved are no endpoint at all.
_RANGES: tuple[tuple[str, tuple[Network, ...]], ...] = (
    ("loopback", (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))),
    (
        "link-local",
        (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10")),
    ),
    (
        "private",
        tuple(
            ipaddress.ip_network(n)
            for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
        ),
    ),
    ("CGNAT", (ipaddress.ip_network("100.64.0.0/10"),)),
    ("multicast", (ipaddress.ip_network("224.0.0.0/4"), ipaddress.ip_network("ff00::/8"))),
    ("unspecified", (ipaddress.ip_network("0.0.0.0/8"), ipaddress.ip_network("::/128"))),
    ("reserved", (ipaddress.ip_network("240.0.0.0/4"),)),
)


class UrlRefused(ValueError):
    """A webhook URL or address the guard refuses; the message names the rule."""

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True, slots=True)
class Guard:
    """The operator's exemptions: networks a webhook may reach, and whether http is allowed."""

    allow_networks: tuple[Network, ...] = ()
    allow_http: bool = False

    @classmethod
    def of(cls, allow_networks: Iterable[str], *, allow_http: bool) -> Guard:
        nets = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in allow_networks)
        return cls(nets, allow_http)

    def address_refusal(self, address: Address) -> str | None:
        """The rule ``address`` breaks, or None when a webhook may connect to it."""
        plain = _unmapped(address)
        if any(plain in net for net in self.allow_networks if net.version == plain.version):
            return None
        for rule, nets in _RANGES:
            if any(plain in net for net in nets if net.version == plain.version):
                return rule
        return None

    def check_url(self, url: str) -> None:
        """Refuse (UrlRefused) a URL whose scheme or literal address the guard forbids."""
        parts = urlsplit(url)
        if parts.scheme == "http" and not self.allow_http:
            raise UrlRefused(
                f"'{url}' uses plain http; webhooks go over https (webhooks.allow_http is off)",
                rule="https-only",
            )
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise UrlRefused(f"'{url}' is not an absolute https URL", rule="https-only")
        address = host_address(parts.hostname)
        if address is not None and (rule := self.address_refusal(address)) is not None:
            raise UrlRefused(
                f"'{url}' points at a {rule} address ({_unmapped(address)}); webhooks may "
                "not reach it unless webhooks.allow_networks lists it",
                rule=rule,
            )


def _unmapped(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _inet_aton_part(text: str) -> int:
    if text[:2].lower() == "0x":
        return int(text[2:] or "0", 16)
    if len(text) > 1 and text.startswith("0"):
        return int(text[1:], 8)
    return int(text, 10)


def host_address(host: str) -> Address | None:
    """The address a host spells, as the C library's inet_aton would read it; None for a name.

    ``2130706433``, ``0x7f000001``, ``0177.0.0.1`` and ``127.1`` all spell 127.0.0.1, and
    ``::ffff:127.0.0.1`` spells it in IPv6: each is read as the address it reaches.
    """
    bare = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(bare.split("%", 1)[0])
    except ValueError:
        pass
    parts = bare.split(".")
    if not 1 <= len(parts) <= 4 or not all(parts):
        return None
    try:
        numbers = [_inet_aton_part(part) for part in parts]
    except ValueError:
        return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def refusals(guard: Guard, addresses: Iterable[str]) -> Sequence[tuple[str, str]]:
    """The (address, rule) pairs of ``addresses`` the guard refuses."""
    out: list[tuple[str, str]] = []
    for text in addresses:
        address = host_address(text)
        rule = "unparsable" if address is None else guard.address_refusal(address)
        if rule is not None:
            out.append((text, rule))
    return out
