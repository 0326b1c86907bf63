"""Which namespaces a reload may change the identity of, and who is told."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.settings import Settings, TenantsSettings
from gateway.settings.reload import TenantsReloader, identity_changes

PAT = {"type": "pat", "token": "dapi-0123456789abcdef"}
OTHER_PAT = {"type": "pat", "token": "dapi-fedcba9876543210"}


def tenants(defaults: dict[str, Any] | None = None, **namespaces: Any) -> TenantsSettings:
    return TenantsSettings.model_validate(
        {"defaults": {"workspace": "prod", **(defaults or {})}, "namespaces": namespaces}
    )


def two(a: dict[str, Any], b: dict[str, Any] | None = None, **more: Any) -> TenantsSettings:
    """team-a's and team-b's entries (team-b: the PAT), and more namespaces."""
    return tenants(**{"team-a": a, "team-b": b or {"identity": PAT}, **more})


BASE = two({"identity": PAT})


@pytest.mark.parametrize(
    ("new", "changed"),
    [
        (BASE, frozenset()),
        # Quotas are no identity: nothing to forget.
        (two({"identity": PAT, "quotas": {"max_active_runs": 2}}), frozenset()),
        (two({"identity": OTHER_PAT}), frozenset({"team-a"})),
        (two({"identity": PAT, "workspace": "dev"}), frozenset({"team-a"})),
        # An entry going or coming changes how the namespace resolves.
        (tenants(**{"team-a": {"identity": PAT}}), frozenset({"team-b"})),
        (two({"identity": PAT}, **{"team-c": {}}), frozenset({"team-c"})),
        # The defaults' workspace is every unpinned namespace's.
        (tenants({"workspace": "dev"}, **{"team-a": {"identity": PAT}}), None),
    ],
)
def test_identity_changes(new: TenantsSettings, changed: frozenset[str] | None) -> None:
    """Presence, workspace or identity of a namespace's entry counts; the rest does not."""
    assert identity_changes(BASE, new) == changed


def _settings(policy: TenantsSettings) -> Settings:
    return Settings.model_validate(
        {
            "workspaces": {"prod": {"host": "https://a.cloud.databricks.com"},
                           "dev": {"host": "https://b.cloud.databricks.com"}},
            "tenants": policy.model_dump(),
        }
    )  # fmt: skip


def test_listeners_hear_of_changed_identities_only_when_there_are_some() -> None:
    """A reload changing team-a's identity tells the listeners so; one changing quotas only
    does not call them."""
    running = _settings(BASE)
    heard: list[frozenset[str] | None] = []
    reloader = TenantsReloader(running, lambda: running)
    reloader.on_changed.append(heard.append)
    quotas_only = two({"identity": PAT, "quotas": {"max_active_runs": 2}})
    assert reloader.apply(_settings(quotas_only))
    assert heard == []
    moved = two({"identity": OTHER_PAT})
    assert reloader.apply(_settings(moved))
    assert heard == [frozenset({"team-a"})]
    assert running.tenants == moved
