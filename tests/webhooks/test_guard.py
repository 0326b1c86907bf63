"""The URL guard: every spelling of a forbidden address is refused, unless allowed."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.webhooks.guard import Guard, UrlRefused
from gateway.webhooks.resolver import AddressRefused, GuardedResolver

STRICT = Guard.of([], allow_http=False)
LOOPBACK_ALLOWED = Guard.of(["127.0.0.0/8"], allow_http=True)


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://10.0.0.1/", "private"),
        ("https://172.16.5.4/", "private"),
        ("https://192.168.1.1/", "private"),
        ("https://100.64.0.1/", "CGNAT"),
        ("https://224.0.0.1/", "multicast"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://0x7f000001/", "loopback"),
        ("https://2130706433/", "loopback"),
        ("https://0177.0.0.1/", "loopback"),
        ("https://127.1/", "loopback"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),
        ("https://[::1]/", "loopback"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[fd00::1]/", "private"),
        ("https://[::]/", "unspecified"),
        ("http://scheduler.example/hook", "https-only"),
        ("ftp://scheduler.example/hook", "https-only"),
    ],
)
def test_forbidden_urls_are_refused_naming_the_rule(url: str, rule: str) -> None:
    """Each forbidden scheme or address, in any spelling, is refused with its rule."""
    with pytest.raises(UrlRefused) as info:
        STRICT.check_url(url)
    assert info.value.rule == rule


@pytest.mark.parametrize(
    "url",
    ["https://scheduler.example/hook", "https://8.8.8.8/", "https://[2001:4860::8888]/x"],
)
def test_public_https_urls_pass(url: str) -> None:
    """A public host over https is allowed."""
    STRICT.check_url(url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/", "https://0x7f000001/", "https://[::ffff:127.0.0.1]/"]
)
def test_allowed_networks_and_http_are_exempt(url: str) -> None:
    """An operator's allow_networks and allow_http exempt exactly what they name."""
    LOOPBACK_ALLOWED.check_url(url)
    with pytest.raises(UrlRefused, match="private"):
        LOOPBACK_ALLOWED.check_url("http://10.0.0.1/")


class _Answers(AbstractResolver):
    """A resolver whose answers the test decides; it sends no packet."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.answers[host]
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("answers", "rule"),
    [
        (["10.1.2.3"], "private"),
        (["93.184.216.34", "169.254.169.254"], "link-local"),
        (["::ffff:192.168.0.9"], "private"),
    ],
)
async def test_a_name_resolving_to_a_forbidden_address_is_refused(
    answers: list[str], rule: str
) -> None:
    """If any address a name resolves to is forbidden, the resolution is refused."""
    resolver = GuardedResolver(STRICT, _Answers({"hooks.example": answers}))
    with pytest.raises(AddressRefused) as info:
        await resolver.resolve("hooks.example", 443)
    assert info.value.rule == rule


async def test_a_name_resolving_to_public_addresses_passes() -> None:
    """Public answers are handed to the connector unchanged."""
    resolver = GuardedResolver(STRICT, _Answers({"hooks.example": ["93.184.216.34"]}))
    results = await resolver.resolve("hooks.example", 443)
    assert [r["host"] for r in results] == ["93.184.216.34"]
