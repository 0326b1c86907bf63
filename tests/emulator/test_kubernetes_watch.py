"""ServiceAccount watches through kubernetes_asyncio.watch.Watch: synthetic ADDED, resuming,
selectors, bookmarks, 410 Expired and relisting, timeouts, and the wire format."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client

from gateway.emulator.kubernetes import KubeApiServer
from tests.emulator._kube import names, watch_events
from tests.fixtures.kube_api import (
    GATEWAY_TOKEN,
    GATEWAY_USER,
    IDENTITY_LABEL,
    KubeApiFactory,
    kube_config,
    kube_configuration,
)

SELECTOR = f"{IDENTITY_LABEL}=true"


async def test_a_watch_without_version_starts_with_added_then_changes(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """Unset resourceVersion: a synthetic ADDED per match, then each change as it happens."""
    core = client.CoreV1Api(kube_client)

    def change(index: int, _event: dict[str, Any]) -> None:
        if index == 1:
            kube_api.create_service_account("tenant-c", "new", labels={IDENTITY_LABEL: "true"})
            kube_api.annotate_service_account("tenant-c", "new", {"note": "x"})
            kube_api.delete_service_account("tenant-c", "new")

    events, w = await watch_events(
        core.list_service_account_for_all_namespaces,
        label_selector=SELECTOR,
        count=5,
        on_event=change,
    )
    assert names(events) == [
        ("ADDED", "billing-api"),
        ("ADDED", "etl"),
        ("ADDED", "new"),
        ("MODIFIED", "new"),
        ("DELETED", "new"),
    ]
    deleted = events[-1]["object"]
    assert isinstance(deleted, client.V1ServiceAccount)
    assert deleted.metadata.annotations == {"note": "x"}  # the last state
    assert w.resource_version == deleted.metadata.resource_version
    assert events[0]["raw_object"]["kind"] == "ServiceAccount"


async def test_a_watch_from_a_version_sends_only_later_changes(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """resourceVersion N replays the kept changes after N and nothing before."""
    core = client.CoreV1Api(kube_client)
    listed = await core.list_namespaced_service_account("tenant-a")
    kube_api.label_service_account("tenant-a", "default", {"x": "1"})
    kube_api.create_service_account("tenant-a", "later")
    events, _ = await watch_events(
        core.list_namespaced_service_account,
        "tenant-a",
        resource_version=listed.metadata.resource_version,
        count=2,
    )
    assert names(events) == [("MODIFIED", "default"), ("ADDED", "later")]


async def test_objects_entering_and_leaving_a_selection(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """A label change seen through a selector is ADDED when it starts matching, DELETED when
    it stops."""
    core = client.CoreV1Api(kube_client)
    listed = await core.list_service_account_for_all_namespaces(label_selector=SELECTOR)
    kube_api.label_service_account("tenant-a", "default", {IDENTITY_LABEL: "true"})
    kube_api.label_service_account("tenant-b", "etl", {IDENTITY_LABEL: None})
    kube_api.label_service_account("lakegate-system", "lakegate", {"other": "y"})
    events, _ = await watch_events(
        core.list_service_account_for_all_namespaces,
        label_selector=SELECTOR,
        resource_version=listed.metadata.resource_version,
        count=2,
    )
    assert names(events) == [("ADDED", "default"), ("DELETED", "etl")]
    assert events[1]["raw_object"]["metadata"]["labels"] == {IDENTITY_LABEL: "true"}


async def test_bookmarks_on_request_carry_the_current_version(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """With allowWatchBookmarks, an admin bookmark arrives with the latest resourceVersion."""
    core = client.CoreV1Api(kube_client)

    def poke(index: int, _event: dict[str, Any]) -> None:
        if index == 1:
            kube_api.create_service_account("tenant-z", "unrelated")
            kube_api.send_bookmarks()

    events, w = await watch_events(
        core.list_service_account_for_all_namespaces,
        label_selector=SELECTOR,
        allow_watch_bookmarks=True,
        count=3,
        on_event=poke,
    )
    current = kube_api.cluster.store.resource_version
    assert names(events)[2] == ("BOOKMARK", str(current))
    assert events[2]["raw_object"] == {
        "kind": "ServiceAccount",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": str(current)},
    }
    assert w.resource_version == str(current)


async def test_bookmarks_are_not_sent_unless_allowed(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """Without allowWatchBookmarks a bookmark request sends nothing to that watch."""
    core = client.CoreV1Api(kube_client)

    def poke(index: int, _event: dict[str, Any]) -> None:
        if index == 1:
            kube_api.send_bookmarks()
            kube_api.create_service_account("tenant-a", "after", labels={IDENTITY_LABEL: "true"})

    events, _ = await watch_events(
        core.list_service_account_for_all_namespaces,
        label_selector=SELECTOR,
        count=3,
        on_event=poke,
    )
    assert names(events)[2] == ("ADDED", "after")


async def test_periodic_bookmarks(kube_api_factory: KubeApiFactory) -> None:
    """A configured interval sends bookmarks on its own while nothing changes."""
    kube = await kube_api_factory(kube_config(watch={"bookmark_interval_seconds": 0.05}))
    async with client.ApiClient(kube_configuration(kube.url)) as api:
        events, _ = await watch_events(
            client.CoreV1Api(api).list_namespaced_service_account,
            "tenant-b",
            allow_watch_bookmarks=True,
            count=3,
        )
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK", "BOOKMARK"]


async def test_a_too_old_version_gets_one_410_event_then_relist_works(
    kube_api_factory: KubeApiFactory,
) -> None:
    """Past the kept history: HTTP 200, one ERROR 410 Expired, end; a relist's version works."""
    kube = await kube_api_factory(kube_config(watch={"history_size": 3}))
    async with client.ApiClient(kube_configuration(kube.url)) as api:
        core = client.CoreV1Api(api)
        listed = await core.list_service_account_for_all_namespaces()
        for i in range(4):
            kube.label_service_account("tenant-a", "default", {"n": str(i)})
        with pytest.raises(client.ApiException) as info:
            await watch_events(
                core.list_service_account_for_all_namespaces,
                resource_version=listed.metadata.resource_version,
            )
        assert info.value.status == 410
        assert str(info.value.reason).startswith("Expired: too old resource version: ")
        relisted = await core.list_service_account_for_all_namespaces()
        kube.create_service_account("tenant-a", "fresh")
        events, _ = await watch_events(
            core.list_service_account_for_all_namespaces,
            resource_version=relisted.metadata.resource_version,
            count=1,
        )
    assert names(events) == [("ADDED", "fresh")]


async def test_the_410_event_on_the_wire(kube_api: KubeApiServer) -> None:
    """The expired watch is 200 with exactly one compact ERROR line holding a Status."""
    kube_api.compact_watch_history()
    kube_api.create_service_account("tenant-a", "one")
    body = await _raw_watch(kube_api, resourceVersion="1")
    lines = body.split(b"\n")
    assert lines[-1] == b""
    assert len(lines) == 2
    event = json.loads(lines[0])
    current = kube_api.cluster.store.compacted_rv
    assert event == {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: 1 ({current + 1})",
            "reason": "Expired",
            "code": 410,
        },
    }


async def test_expire_watches_ends_open_watches_with_410(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """expire_watches() sends ERROR 410 to open watches, and their versions stay too old."""
    core = client.CoreV1Api(kube_client)
    listed = await core.list_service_account_for_all_namespaces()

    def expire(index: int, _event: dict[str, Any]) -> None:
        if index == 0:
            assert kube_api.expire_watches() == 1

    with pytest.raises(client.ApiException) as info:
        await watch_events(
            core.list_service_account_for_all_namespaces, label_selector=SELECTOR, on_event=expire
        )
    assert info.value.status == 410
    with pytest.raises(client.ApiException) as info:
        await watch_events(
            core.list_service_account_for_all_namespaces,
            resource_version=listed.metadata.resource_version,
        )
    assert info.value.status == 410


async def test_timeout_seconds_ends_the_stream_cleanly(kube_client: client.ApiClient) -> None:
    """timeoutSeconds ends the response without an error; iteration just stops."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    events, _ = await watch_events(
        client.CoreV1Api(kube_client).list_namespaced_service_account,
        "tenant-b",
        timeout_seconds=1,
    )
    assert names(events) == [("ADDED", "etl")]
    assert 0.9 <= loop.time() - started < 3


async def test_close_watches_ends_streams_cleanly(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """close_watches() ends open streams as a server timeout would."""

    def close(index: int, _event: dict[str, Any]) -> None:
        if index == 0:
            kube_api.close_watches()

    events, _ = await watch_events(
        client.CoreV1Api(kube_client).list_namespaced_service_account,
        "tenant-b",
        on_event=close,
    )
    assert len(events) == 1
    await asyncio.sleep(0.05)
    assert kube_api.open_watches == 0


async def test_a_denied_watch_is_a_plain_403(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """Denying watch refuses the stream before it starts; lists still work (informer fallback)."""
    kube_api.deny("watch", "serviceaccounts")
    core = client.CoreV1Api(kube_client)
    with pytest.raises(client.ApiException) as info:
        await watch_events(core.list_service_account_for_all_namespaces)
    assert info.value.status == 403
    assert info.value.reason == (
        f'Forbidden: serviceaccounts is forbidden: User "{GATEWAY_USER}" cannot watch resource '
        '"serviceaccounts" in API group "" at the cluster scope'
    )
    assert len((await core.list_service_account_for_all_namespaces()).items) == 4


async def test_send_initial_events_ends_with_a_marked_bookmark(kube_api: KubeApiServer) -> None:
    """sendInitialEvents streams the list, then a bookmark annotated initial-events-end."""
    body = await _raw_watch(
        kube_api,
        3,
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        allowWatchBookmarks="true",
        labelSelector=SELECTOR,
    )
    events = [json.loads(line) for line in body.splitlines()]
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    annotations = events[2]["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}


async def test_watch_lines_are_compact_json_without_keepalives(kube_api: KubeApiServer) -> None:
    """Every line is one JSON object with type and object; no blank lines, no indentation."""
    body = await _raw_watch(kube_api, 4, allowWatchBookmarks="True")
    lines = body.split(b"\n")
    assert lines.pop() == b""
    for line in lines:
        assert line
        assert not line.startswith(b" ")
        event = json.loads(line)
        assert set(event) == {"type", "object"}
        assert event["object"]["apiVersion"] == "v1"


async def _raw_watch(kube: KubeApiServer, lines: int | None = None, **params: str) -> bytes:
    """The raw body of a watch: its first ``lines`` lines, or all of it until it ends."""
    headers = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}
    query = {"watch": "True", "timeoutSeconds": "5", **params}
    async with (
        asyncio.timeout(5),
        aiohttp.ClientSession(headers=headers) as http,
        http.get(f"{kube.url}/api/v1/serviceaccounts", params=query) as resp,
    ):
        assert resp.status == 200
        assert resp.content_type == "application/json"
        if lines is None:
            return await resp.read()
        return b"".join([await resp.content.readline() for _ in range(lines)])


async def test_a_watch_the_client_leaves_counts_as_200(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """A watch the client breaks off after events is counted as the 200 it was sent."""
    await watch_events(
        client.CoreV1Api(kube_client).list_namespaced_service_account, "tenant-b", count=1
    )
    for _ in range(100):
        if kube_api.open_watches == 0:
            break
        await asyncio.sleep(0.01)
    assert kube_api.request_count("watch", "serviceaccounts", 200) == 1
