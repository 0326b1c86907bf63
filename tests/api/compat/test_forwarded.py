"""Forwarded and X-Forwarded-Host/-Proto: believed only from ``server.trusted_proxies``.

The pure reading first (hops, the walk from the right, what counts as a host), then over
real sockets: the Host a trusted proxy forwards chooses the namespace and the URLs of
/.well-known/databricks-config; the same headers from any other peer change nothing.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from gateway import errors
from gateway.api.compat.forwarded import (
    Hop,
    Origin,
    Proxies,
    forwarded_hops,
    public_origin,
    x_forwarded_hops,
)
from gateway.appkeys import RUNS
from gateway.callers.api_keys import sha256_hex
from tests.e2e.specs import spec
from tests.fixtures.gateway import GatewayStack, StackFactory

SOCKET = Origin("http", "10.0.0.5:8080")
PROXIES = Proxies([ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")])
KEY = "lgk-forwarded-scheduler-0123456789"
PATTERN = "{namespace}.lakegate.example"
TEAM_A, TEAM_B = "team-00", "team-01"


# --- reading the headers --------------------------------------------------------------------


def test_forwarded_elements_pairs_and_quotes() -> None:
    """Elements by comma (several headers joined), pairs by semicolon, names in any case,
    quoted values unquoted, a comma inside quotes kept."""
    hops = forwarded_hops(
        ['for=192.0.2.60;proto=https;Host="a.example:8443"', 'FOR="[fd00::1]:99";host="x,y"']
    )
    assert hops == [
        Hop("192.0.2.60", "a.example:8443", "https"),
        Hop("[fd00::1]:99", "x,y", None),
    ]


def test_a_malformed_forwarded_element_says_nothing_but_still_counts() -> None:
    """A hop that cannot be read is an empty hop, so the walk stops at it."""
    assert forwarded_hops(["host=a.example, nonsense, for=10.0.0.2"]) == [
        Hop(None, "a.example", None),
        Hop(),
        Hop("10.0.0.2", None, None),
    ]


def test_x_forwarded_lists_align_at_the_right() -> None:
    """A single X-Forwarded-Host beside two X-Forwarded-For entries is the nearest hop's."""
    hops = x_forwarded_hops(["203.0.113.7, 10.0.0.3"], ["api.example"], ["https"])
    assert hops == [Hop("203.0.113.7", None, None), Hop("10.0.0.3", "api.example", "https")]


# --- whom to believe ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "hops", "expected"),
    [
        # An untrusted peer's headers are ignored entirely.
        ("192.0.2.9", [Hop("192.0.2.1", "team-01.example", "https")], SOCKET),
        (None, [Hop(None, "team-01.example", "https")], SOCKET),
        # The trusted peer's hop says what its client called.
        ("10.0.0.5", [Hop("192.0.2.1", "api.example", "https")], Origin("https", "api.example")),
        # A client's own element to the left of the proxy's is not believed.
        (
            "10.0.0.5",
            [Hop(None, "evil.example", "http"), Hop("192.0.2.1", "api.example", "https")],
            Origin("https", "api.example"),
        ),
        # Two trusted proxies: the outer one's hop is read.
        (
            "10.0.0.5",
            [Hop("192.0.2.1", "outer.example", "https"), Hop("10.0.0.9", "inner.svc", "http")],
            Origin("https", "outer.example"),
        ),
        # An IPv6 proxy, an IPv4-mapped peer, a port on the host kept.
        (
            "fd00::7",
            [Hop("192.0.2.1", "API.example:8443", None)],
            Origin("http", "api.example:8443"),
        ),
        ("::ffff:10.1.2.3", [Hop(None, None, "https")], Origin("https", SOCKET.host)),
        # Values that are not a host or a scheme are ignored, the socket's kept.
        ("10.0.0.5", [Hop(None, "a.example/evil", "gopher")], SOCKET),
        ("10.0.0.5", [Hop(None, "user@a.example", "HTTPS")], Origin("https", SOCKET.host)),
        ("10.0.0.5", [Hop(None, "a b", None)], SOCKET),
        # "unknown" or an obfuscated node is never a trusted proxy: the walk stops there.
        (
            "10.0.0.5",
            [Hop(None, "left.example", None), Hop("unknown", "near.example", None)],
            Origin("http", "near.example"),
        ),
    ],
)
def test_public_origin(peer: str | None, hops: list[Hop], expected: Origin) -> None:
    """Which scheme and Host the client called, by peer and hops."""
    assert public_origin(peer, SOCKET, hops, PROXIES) == expected


def test_no_trusted_proxies_trusts_nobody() -> None:
    """The default (none) ignores forwarded headers from every peer, loopback too."""
    nobody = Proxies([])
    assert not nobody
    assert public_origin("127.0.0.1", SOCKET, [Hop(None, "a.example", "https")], nobody) == SOCKET


# --- over real sockets ----------------------------------------------------------------------


async def shared_stack(factory: StackFactory, trusted: list[str]) -> GatewayStack:
    callers = {
        "methods": ["api_key"],
        "namespace_host_pattern": PATTERN,
        "api_keys": [
            {"name": "scheduler", "sha256": sha256_hex(KEY), "namespaces": [TEAM_A, TEAM_B]}
        ],
    }
    gateway = {"callers": callers, "server": {"trusted_proxies": trusted}}
    return await factory(namespaces=2, gateway=gateway)


async def submit(stack: GatewayStack, name: str, headers: dict[str, str]) -> str:
    """Submit through the facade with ``headers``; the namespace whose ledger took the run."""
    url = f"{stack.url}/api/2.1/jobs/runs/submit"
    headers = {"Authorization": f"Bearer {KEY}", **headers}
    async with stack.session.post(url, json=spec(name), headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    for namespace in (TEAM_A, TEAM_B):
        try:
            await stack.app[RUNS].get(namespace, int(body["run_id"]))
        except errors.NotFound:
            continue
        [remote] = [r for r in stack.emulator.runs() if r["run_name"] == name]
        assert remote["principal"] == stack.principal(namespace)
        return namespace
    raise AssertionError("the run is in no namespace")


SPOOFS: list[dict[str, str]] = [
    {"X-Forwarded-Host": f"{TEAM_B}.lakegate.example"},
    {"Forwarded": f"host={TEAM_B}.lakegate.example;proto=https"},
]


@pytest.mark.parametrize("trusted", [[], ["10.0.0.0/8"]])
@pytest.mark.parametrize("spoof", SPOOFS)
async def test_an_untrusted_peer_cannot_choose_another_namespace(
    gateway_stack_factory: StackFactory, trusted: list[str], spoof: dict[str, str]
) -> None:
    """From a peer outside trusted_proxies (none configured, or another network) the
    forwarded Host is ignored: the Host header itself chooses team-00."""
    stack = await shared_stack(gateway_stack_factory, trusted)
    headers = {"Host": f"{TEAM_A}.lakegate.example", **spoof}
    assert await submit(stack, "spoofed", headers) == TEAM_A


@pytest.mark.parametrize("forwarded", SPOOFS)
async def test_a_trusted_proxy_s_forwarded_host_chooses_the_namespace(
    gateway_stack_factory: StackFactory, forwarded: dict[str, str]
) -> None:
    """Behind a trusted proxy (loopback here), the Host it forwards chooses, not the one it
    called lakegate at."""
    stack = await shared_stack(gateway_stack_factory, ["127.0.0.0/8"])
    headers = {"Host": "lakegate.lakegate.svc:8080", **forwarded}
    assert await submit(stack, "forwarded", headers) == TEAM_B


async def host_metadata(stack: GatewayStack, headers: dict[str, str]) -> Any:
    url = f"{stack.url}/.well-known/databricks-config"
    async with stack.session.get(url, headers=headers) as resp:
        assert resp.status == 200
        return await resp.json()


@pytest.mark.parametrize(
    ("headers", "endpoint"),
    [
        (
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "lakegate.example"},
            "https://lakegate.example/oidc",
        ),
        (
            {"Forwarded": 'for=192.0.2.1;proto=https;host="lakegate.example:8443"'},
            "https://lakegate.example:8443/oidc",
        ),
        ({"X-Forwarded-Proto": "https"}, "https://{socket}/oidc"),
    ],
)
async def test_host_metadata_names_the_url_the_client_called_through_the_proxy(
    gateway_stack_factory: StackFactory, headers: dict[str, str], endpoint: str
) -> None:
    """Behind a TLS-terminating proxy the OIDC endpoint is https and the public host."""
    stack = await shared_stack(gateway_stack_factory, ["127.0.0.1"])
    socket = stack.url.removeprefix("http://")
    assert (await host_metadata(stack, headers))["oidc_endpoint"] == endpoint.format(socket=socket)


async def test_host_metadata_ignores_an_untrusted_peer_s_forwarded_headers(
    gateway_stack_factory: StackFactory,
) -> None:
    """Without trusted proxies the endpoint is the socket's scheme and Host."""
    stack = await shared_stack(gateway_stack_factory, [])
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    assert (await host_metadata(stack, headers))["oidc_endpoint"] == f"{stack.url}/oidc"


async def test_forwarded_wins_over_x_forwarded(gateway_stack_factory: StackFactory) -> None:
    """A request with both: RFC 7239's Forwarded is read, the X-Forwarded-* headers not."""
    stack = await shared_stack(gateway_stack_factory, ["127.0.0.1"])
    headers = {
        "Forwarded": "proto=https;host=standard.example",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "legacy.example",
    }
    metadata = await host_metadata(stack, headers)
    assert metadata["oidc_endpoint"] == "https://standard.example/oidc"
