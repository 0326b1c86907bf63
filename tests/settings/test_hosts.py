"""Workspace hosts are normalised once: every spelling of one workspace is one entry."""

from __future__ import annotations

import pytest

from gateway.settings import Settings, normalize_host
from gateway.settings.base import same_host

WS = "https://adb-1.2.azuredatabricks.net"


@pytest.mark.parametrize(
    "spelling",
    [
        "adb-1.2.azuredatabricks.net",
        "adb-1.2.azuredatabricks.net/",
        "https://adb-1.2.azuredatabricks.net",
        "https://adb-1.2.azuredatabricks.net/",
        "https://adb-1.2.azuredatabricks.net:443",
        "https://ADB-1.2.azuredatabricks.net:443/",
        "https://adb-1.2.azuredatabricks.net/?o=12345#job/1",
        "https://adb-1.2.azuredatabricks.net/api/2.2",
        "  https://adb-1.2.azuredatabricks.net.  ",
    ],
)
def test_every_spelling_is_one_host(spelling: str) -> None:
    assert normalize_host(spelling) == WS


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("https://ws.example:8443", "https://ws.example:8443"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        ("http://[::1]:8081/", "http://[::1]:8081"),
    ],
)
def test_a_port_other_than_the_default_is_kept(spelling: str, expected: str) -> None:
    assert normalize_host(spelling) == expected


@pytest.mark.parametrize("bad", ["https://ws.example:99999", "https://user@ws.example", "a b"])
def test_what_is_no_host_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"port|user name|space"):
        normalize_host(bad)


def test_test1_never_matches_test2() -> None:
    assert not same_host("https://test1.cloud.databricks.com", "test2.cloud.databricks.com")
    assert not same_host("https://test1.x", "https://test1.x.evil")


def settings(**workspaces: str) -> Settings:
    return Settings.model_validate({"workspaces": {k: {"host": v} for k, v in workspaces.items()}})


@pytest.mark.parametrize(
    "spelling",
    [
        "ws.example",
        "https://ws.example",
        "https://ws.example/",
        "ws.example/",
        "https://ws.example:443",
        "https://WS.example/path",
    ],
)
def test_the_allow_list_finds_the_workspace_by_any_spelling(spelling: str) -> None:
    found = settings(prod=spelling).workspace_named("https://ws.example:443/")
    assert found is not None
    assert (found[0], found[1].host) == ("prod", "https://ws.example")
    assert settings(prod="https://ws.example").workspace_named(spelling) is not None


def test_another_host_is_not_on_the_allow_list() -> None:
    listed = settings(a="https://test1.example")
    assert listed.workspace_named("https://test2.example") is None
    assert listed.workspace_named("not a host") is None


def test_two_spellings_of_one_workspace_are_one_entry_too_many() -> None:
    with pytest.raises(ValueError, match="'a' and 'b' are one workspace"):
        settings(a="https://ws.example", b="ws.example:443/")
