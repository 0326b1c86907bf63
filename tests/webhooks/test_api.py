"""The webhook routes: dead events listed and redelivered, disabled endpoints re-enabled."""

from __future__ import annotations

import pytest

from gateway.runs.types import utcnow
from gateway.store.sqlite import SqliteStore
from tests.webhooks.conftest import ApiClient as Client
from tests.webhooks.conftest import dead_event

BASE = "/v1/namespaces/team-a/webhooks"


async def test_dead_events_are_listed_with_their_webhook_id(
    client: Client, store: SqliteStore
) -> None:
    """GET dead lists the namespace's dead events, newest first, paged with before."""
    first, second = await dead_event(store), await dead_event(store)
    await dead_event(store, "team-b")
    resp = await client.get(f"{BASE}/dead", params={"limit": "1"})
    body = await resp.json()
    assert resp.status == 200
    [event] = body["events"]
    assert (event["id"], event["attempts"], event["last_status"]) == (second, 8, 500)
    assert event["webhook_id"].endswith(f"_{second}")
    assert body["next_before"] == second
    resp = await client.get(f"{BASE}/dead", params={"before": str(second)})
    assert [e["id"] for e in (await resp.json())["events"]] == [first]


async def test_redeliver_one_or_all(client: Client, store: SqliteStore) -> None:
    """POST redeliver makes the named (or all) dead events due again; unknown ids are 404."""
    first, second = await dead_event(store), await dead_event(store)
    resp = await client.post(f"{BASE}/redeliver", json={"ids": [second]})
    assert (resp.status, await resp.json()) == (202, {"redelivered": [second]})
    resp = await client.post(f"{BASE}/redeliver", json={"ids": [second]})
    assert resp.status == 404
    resp = await client.post(f"{BASE}/redeliver", json={"all": True})
    assert (await resp.json()) == {"redelivered": [first]}


@pytest.mark.parametrize("body", [{}, {"ids": []}, {"ids": ["1"]}, {"all": False}, [1]])
async def test_a_malformed_redelivery_is_a_400(client: Client, body: object) -> None:
    """A body that names neither ids nor all is refused, saying what to send."""
    resp = await client.post(f"{BASE}/redeliver", json=body)
    assert resp.status == 400
    assert "ids" in (await resp.json())["detail"]


async def test_a_disabled_endpoint_is_shown_and_enabled(client: Client, store: SqliteStore) -> None:
    """A 410-disabled endpoint is listed until enabled; enabling it twice is a 404."""
    await store.disable_endpoint("team-a", "https://hooks.example/a", utcnow(), reason="410 Gone")
    resp = await client.get(f"{BASE}/endpoints")
    [endpoint] = (await resp.json())["disabled"]
    assert (endpoint["url"], endpoint["reason"]) == ("https://hooks.example/a", "410 Gone")
    resp = await client.post(f"{BASE}/endpoints/enable", json={"url": "https://hooks.example/a"})
    assert resp.status == 200
    assert (await (await client.get(f"{BASE}/endpoints")).json()) == {"disabled": []}
    resp = await client.post(f"{BASE}/endpoints/enable", json={"url": "https://hooks.example/a"})
    assert resp.status == 404
