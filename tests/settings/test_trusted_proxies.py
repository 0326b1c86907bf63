"""server.trusted_proxies: the CIDRs whose forwarded headers lakegate believes (none by default)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.settings import load_settings
from tests.settings.test_loading import write

GATEWAY = """
server:
  port: 9090
  trusted_proxies: ["10.0.0.0/8", "fd00::/8", "192.0.2.7"]
workspaces:
  prod: {host: "https://adb-1.2.azuredatabricks.net/"}
tenants_file: tenants.yaml
"""


def test_trusted_proxies_load_as_networks(tmp_path: Path) -> None:
    """CIDRs of either family, and a bare address as a network of one."""
    settings = load_settings(write(tmp_path, gateway=GATEWAY), environ={})
    assert settings.server.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("192.0.2.7/32"),
    )


def test_no_proxy_is_trusted_by_default(tmp_path: Path) -> None:
    """Without the key, forwarded headers are believed from nobody."""
    assert load_settings(write(tmp_path), environ={}).server.trusted_proxies == ()


@pytest.mark.parametrize("value", ["10.0.0.1/8", "proxy.example", "10.0.0.0/33"])
def test_a_bad_network_is_refused_naming_the_key(tmp_path: Path, value: str) -> None:
    """Host bits set, a name, a bad prefix: refused, naming server.trusted_proxies."""
    gateway = GATEWAY.replace('"192.0.2.7"', f'"{value}"')
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, gateway=gateway), environ={})
    [problem] = info.value.problems
    assert "server.trusted_proxies.2" in problem
