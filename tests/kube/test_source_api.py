"""Listing and watching ServiceAccounts as raw JSON against the fake Kubernetes API."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.emulator.kubernetes import KubeApiServer
from gateway.kube import KubeClient, KubeForbidden, LabelSelector
from gateway.kube.source import ServiceAccountSource, WatchEvent
from tests.fixtures.kube_api import IDENTITY_LABEL, TENANT_A, TENANT_B
from tests.kube.conftest import REQUEST_TIMEOUT

SELECTOR = LabelSelector.equals({IDENTITY_LABEL: "true"})


def source(kube: KubeClient, **kwargs: Any) -> ServiceAccountSource:
    kwargs.setdefault("namespace", None)
    return ServiceAccountSource(
        kube.api, selector=SELECTOR, request_timeout=REQUEST_TIMEOUT, **kwargs
    )


async def test_list_follows_continue_tokens(kube: KubeClient, kube_api: KubeApiServer) -> None:
    """A list split into pages returns every matching account once."""
    for i in range(4):
        kube_api.create_service_account(TENANT_A, f"sa-{i}", labels={IDENTITY_LABEL: "true"})
    listing = await source(kube, page_size=2).list()
    names = sorted(f"{a.namespace}/{a.name}" for a in listing.accounts)
    assert names == sorted(
        [f"{TENANT_A}/billing-api", f"{TENANT_B}/etl", *(f"{TENANT_A}/sa-{i}" for i in range(4))]
    )
    assert listing.resource_version


async def test_namespaced_list(kube: KubeClient) -> None:
    """A namespace narrows an all-namespace source to that namespace."""
    listing = await source(kube).list(TENANT_B)
    assert [a.name for a in listing.accounts] == ["etl"]


async def test_watch_ends_cleanly_at_its_timeout(kube: KubeClient, kube_api: KubeApiServer) -> None:
    """A watch with timeoutSeconds ends without error; events before that are delivered."""
    src = source(kube)
    listing = await src.list()
    events: list[WatchEvent] = []

    def on_open() -> None:
        kube_api.create_service_account(TENANT_B, "new", labels={IDENTITY_LABEL: "true"})
        kube_api.send_bookmarks()

    seen = await src.watch(
        listing.resource_version, timeout_seconds=1, on_event=events.append, on_open=on_open
    )
    assert seen == len(events) >= 2
    assert [e.type for e in events[:2]] == ["ADDED", "BOOKMARK"]
    assert events[0].account is not None
    assert events[0].account.name == "new"


async def test_forbidden_watch_keeps_the_servers_message(
    kube: KubeClient, kube_api: KubeApiServer
) -> None:
    """A refused watch raises KubeForbidden with the API server's Status message."""
    kube_api.deny("watch", "serviceaccounts")
    with pytest.raises(KubeForbidden, match='cannot watch resource "serviceaccounts"'):
        await source(kube).watch("", timeout_seconds=1, on_event=lambda _: None)
