"""Choosing a namespace without a header: the Host pattern and an API key's default. Pure."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gateway.callers.api_keys import identity_for
from gateway.callers.grants import caller_for
from gateway.callers.hosts import HostNamespaces
from gateway.settings import ApiKeySettings, CallersSettings

SHA = "b" * 64
HOSTS = HostNamespaces("{namespace}.lakegate.example")


@pytest.mark.parametrize(
    ("host", "namespace"),
    [
        ("team-a.lakegate.example", "team-a"),
        ("Team-A.LakeGate.Example:8443", "team-a"),
        ("team-a.lakegate.example.", "team-a"),
        ("lakegate.example", None),
        ("a.b.lakegate.example", None),
        ("team-a.lakegate.example.evil.test", None),
        ("team-a-lakegate-example", None),
        ("-x.lakegate.example", None),
        ("[::1]:8080", None),
        ("", None),
        (None, None),
    ],
)
def test_the_host_names_a_namespace_only_when_it_fits_the_pattern(
    host: str | None, namespace: str | None
) -> None:
    """Case and port aside, the whole host must fit, with a valid namespace name in its slot."""
    assert HOSTS.namespace(host) == namespace


def test_without_a_pattern_no_host_names_a_namespace() -> None:
    assert HostNamespaces(None).namespace("team-a.lakegate.example") is None


def test_a_service_name_pattern_works_too() -> None:
    """A per-namespace Service name resolving to lakegate: lakegate.<namespace>.svc."""
    hosts = HostNamespaces("lakegate.{namespace}.svc.cluster.local")
    assert hosts.namespace("lakegate.team-b.svc.cluster.local:80") == "team-b"


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("lakegate.example", "exactly once"),
        ("{namespace}.{namespace}.example", "exactly once"),
        ("{namespace}", "more than"),
        ("*.{namespace}.example", "only letters"),
        ("{namespace}.lakegate.example:8443", "only letters"),
        ("https://{namespace}.example", "only letters"),
    ],
)
def test_a_bad_host_pattern_fails_at_start_up(pattern: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        CallersSettings(namespace_host_pattern=pattern)


def _key(**fields: Any) -> dict[str, Any]:
    return {"name": "sched", "sha256": SHA, **fields}


def test_a_key_s_default_namespace_reaches_its_caller() -> None:
    """The default travels from the key to the caller, grants applied or not."""
    key = ApiKeySettings(**_key(namespaces=("team-a", "team-b"), default_namespace="team-b"))
    caller = caller_for(identity_for(key), ())
    assert caller.default_namespace == "team-b"
    assert caller.may_act_for("team-b")


@pytest.mark.parametrize(
    "section",
    [
        {"api_keys": [_key(namespaces=["team-a"], default_namespace="team-a")]},
        {"api_keys": [_key(namespace_selector="tier=batch", default_namespace="team-x")]},
        {
            "api_keys": [_key(default_namespace="team-g")],
            "grants": [{"subject": "apikey:sch*", "namespaces": ["team-g"]}],
        },
    ],
)
def test_a_default_namespace_the_key_may_use_is_accepted(section: dict[str, Any]) -> None:
    """Bound, granted, or possibly under a selector (checked again per request)."""
    CallersSettings(methods=("api_key",), **section)


def test_a_default_namespace_the_key_may_not_use_fails_at_start_up() -> None:
    with pytest.raises(ValidationError, match="default_namespace 'team-z' is not among"):
        CallersSettings(
            methods=("api_key",), api_keys=[_key(namespaces=["team-a"], default_namespace="team-z")]
        )
    with pytest.raises(ValidationError, match="not a Kubernetes namespace name"):
        ApiKeySettings(**_key(namespaces=["team-a"], default_namespace="Team_A"))
