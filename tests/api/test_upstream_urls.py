"""Upstream URLs in the settings: no credentials or parser tricks, plain http only on
loopback (issue 9)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.settings import Settings

REFUSED_WORKSPACES = [
    "https://good.cloud.databricks.com@harvest.example.com",
    "https://user:hunter2-password@adb-1.azuredatabricks.net",
    "https://adb-1.azuredatabricks.net\\@harvest.example.com",
    "https://adb-1.azure databricks.net",
    "https://adb-1.azuredatabricks.net\x00",
]


@pytest.mark.parametrize("host", REFUSED_WORKSPACES)
def test_a_workspace_host_with_userinfo_or_a_backslash_is_refused(host: str) -> None:
    """A workspace host another parser could read as another host is refused, never quoting
    what may be a password."""
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({"workspaces": {"prod": {"host": host}}})
    # What the settings loader prints is each error's message (pydantic's repr adds the input).
    messages = " ".join(err["msg"] for err in caught.value.errors())
    assert "hunter2" not in messages


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("https://kubernetes.default.svc", True),
        ("http://127.0.0.1:6443", True),
        ("http://localhost:6443", True),
        ("http://10.0.0.1:6443", False),
        ("http://kubernetes.default.svc", False),
        ("https://admin:pw@kubernetes.default.svc", False),
    ],
)
def test_the_kubernetes_host_is_https_unless_loopback(host: str, ok: bool) -> None:
    """A bearer token goes to the API server: only over https, or plain http to loopback."""
    raw = {"kubernetes": {"mode": "explicit", "host": host, "token_file": "/t"}}
    if ok:
        assert Settings.model_validate(raw).kubernetes.host == host
    else:
        with pytest.raises(ValidationError):
            Settings.model_validate(raw)
