"""The fake Kubernetes API's /emulator/ surface over HTTP, and running it with serve()."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client

from gateway.emulator.kubernetes import KubeApiServer, KubeEmulatorConfig, serve
from tests.emulator._kube import status_of, watch_events
from tests.fixtures.kube_api import GATEWAY_TOKEN, TENANT_A, kube_configuration
from tests.support.http import session_fixture

http = session_fixture("http")


async def admin(
    http: aiohttp.ClientSession, kube: KubeApiServer, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    async with http.request(method, f"{kube.url}/emulator/{path}", json=body) as resp:
        return resp.status, await resp.json()


async def test_service_accounts_are_managed_through_admin(
    kube_api: KubeApiServer, http: aiohttp.ClientSession
) -> None:
    """PUT creates, PATCH merges labels (null removes), DELETE removes; 404 when absent."""
    path = "namespaces/team-x/serviceaccounts/runner"
    status, sa = await admin(http, kube_api, "PUT", path, {"labels": {"a": "1", "b": "2"}})
    assert status == 200
    assert sa["metadata"]["labels"] == {"a": "1", "b": "2"}
    status, sa = await admin(
        http, kube_api, "PATCH", path, {"labels": {"a": None}, "annotations": {"n": "x"}}
    )
    assert (sa["metadata"]["labels"], sa["metadata"]["annotations"]) == ({"b": "2"}, {"n": "x"})
    assert (await admin(http, kube_api, "DELETE", path))[0] == 200
    assert (await admin(http, kube_api, "DELETE", path))[0] == 404
    assert (await admin(http, kube_api, "PATCH", path, {}))[0] == 404


async def test_admin_refuses_invalid_names_and_labels(
    kube_api: KubeApiServer, http: aiohttp.ClientSession
) -> None:
    """Names that Kubernetes would refuse, and bad label keys, are 400."""
    bad_ns = await admin(http, kube_api, "PUT", "namespaces/Bad_NS/serviceaccounts/x", {})
    assert bad_ns[0] == 400
    bad_label = await admin(
        http, kube_api, "PUT", "namespaces/a/serviceaccounts/x", {"labels": {"-no": "1"}}
    )
    assert bad_label[0] == 400
    with pytest.raises(ValueError, match="label key"):
        kube_api.create_service_account("a", "x", labels={"bad key": "1"})


async def test_secrets_and_namespaces_through_admin(
    kube_api: KubeApiServer, http: aiohttp.ClientSession, kube_client: client.ApiClient
) -> None:
    """A PUT Secret is served base64-encoded; deleting its namespace removes everything in it."""
    body = {"string_data": {"token": "plain"}, "data": {"raw": base64.b64encode(b"\x00").decode()}}
    assert (await admin(http, kube_api, "PUT", "namespaces/team-x/secrets/s", body))[0] == 200
    core = client.CoreV1Api(kube_client)
    secret = await core.read_namespaced_secret("s", "team-x")
    assert secret.data == {"raw": "AA==", "token": base64.b64encode(b"plain").decode()}
    assert (await admin(http, kube_api, "DELETE", f"namespaces/{TENANT_A}"))[0] == 200
    assert (await core.list_namespaced_service_account(TENANT_A)).items == []
    _, state = await admin(http, kube_api, "GET", "state")
    assert TENANT_A not in state["namespaces"]
    assert {"namespace": "team-x", "name": "s", "type": "Opaque", "keys": ["raw", "token"]} in (
        state["secrets"]
    )


async def test_rbac_rules_through_admin(
    kube_api: KubeApiServer, http: aiohttp.ClientSession, kube_client: client.ApiClient
) -> None:
    """POST rbac/deny adds a rule, GET lists it, DELETE rbac/{id} lifts it."""
    status, added = await admin(
        http, kube_api, "POST", "rbac/deny", {"verb": "get", "resource": "secrets"}
    )
    assert status == 200
    _, listed = await admin(http, kube_api, "GET", "rbac")
    assert listed["rules"][0]["id"] == added["id"]
    core = client.CoreV1Api(kube_client)
    with pytest.raises(client.ApiException) as info:
        await core.read_namespaced_secret("databricks-token", TENANT_A)
    assert status_of(info.value)["reason"] == "Forbidden"
    assert (await admin(http, kube_api, "DELETE", f"rbac/{added['id']}"))[1] == {"removed": 1}
    await core.read_namespaced_secret("databricks-token", TENANT_A)
    assert (await admin(http, kube_api, "DELETE", "rbac/deny-99"))[0] == 404


async def test_watch_controls_through_admin(
    kube_api: KubeApiServer, http: aiohttp.ClientSession, kube_client: client.ApiClient
) -> None:
    """watches/expire ends an open watch with 410 and reports how many it reached."""
    replies: list[dict[str, Any]] = []

    async def expire(index: int, _event: dict[str, Any]) -> None:
        if index == 0:
            replies.append((await admin(http, kube_api, "POST", "watches/expire"))[1])

    with pytest.raises(client.ApiException) as info:
        await watch_events(
            client.CoreV1Api(kube_client).list_namespaced_service_account,
            "tenant-b",
            on_event=expire,
        )
    assert info.value.status == 410
    assert replies[0]["affected"] == 1
    assert replies[0]["compacted_resource_version"] == replies[0]["resource_version"]
    for action in ("compact", "bookmark", "close"):
        assert (await admin(http, kube_api, "POST", f"watches/{action}"))[0] == 200
    assert (await admin(http, kube_api, "POST", "watches/explode"))[0] == 404
    _, watches = await admin(http, kube_api, "GET", "watches")
    assert watches["started"] == 1


async def test_keys_and_tokens_through_admin(
    kube_api: KubeApiServer, http: aiohttp.ClientSession
) -> None:
    """Rotate, list and remove keys; mint a token; the current key cannot be removed."""
    old = kube_api.kid
    _, rotated = await admin(http, kube_api, "POST", "keys/rotate", {})
    _, keys = await admin(http, kube_api, "GET", "keys")
    assert keys == {"current": rotated["kid"], "kids": [old, rotated["kid"]]}
    assert (await admin(http, kube_api, "DELETE", f"keys/{rotated['kid']}"))[0] == 400
    assert (await admin(http, kube_api, "DELETE", f"keys/{old}"))[0] == 200
    body = {"namespace": TENANT_A, "service_account": "billing-api", "audiences": ["gw"]}
    status, minted = await admin(http, kube_api, "POST", "tokens", body)
    assert status == 200
    assert minted["token"].count(".") == 2
    missing = {"namespace": TENANT_A, "service_account": "ghost"}
    assert (await admin(http, kube_api, "POST", "tokens", missing))[0] == 404


async def test_stats_and_clock_through_admin(
    kube_api: KubeApiServer, http: aiohttp.ClientSession, kube_client: client.ApiClient
) -> None:
    """Admin calls are not counted; stats reset; the clock advances."""
    await client.CoreV1Api(kube_client).list_service_account_for_all_namespaces()
    _, stats = await admin(http, kube_api, "GET", "stats")
    assert stats["requests"] == [
        {"verb": "list", "resource": "serviceaccounts", "status": "200", "count": 1}
    ]
    await admin(http, kube_api, "POST", "stats/reset")
    assert (await admin(http, kube_api, "GET", "stats"))[1]["total"] == 0
    _, clock = await admin(http, kube_api, "POST", "clock/advance", {"seconds": 90})
    assert clock["offset_seconds"] == 90
    assert (await admin(http, kube_api, "POST", "clock/advance", {"seconds": -1}))[0] == 400


async def test_the_issuer_can_be_configured(kube_api_factory: Any) -> None:
    """A configured issuer goes into tokens and discovery; the JWKS stays on this server."""
    config = KubeEmulatorConfig(
        issuer="https://kubernetes.default.svc.cluster.local",
        namespaces={"a": {"service_accounts": {"x": {}}}},
    )
    kube = await kube_api_factory(config)
    assert kube.issuer == "https://kubernetes.default.svc.cluster.local"
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{kube.url}/.well-known/openid-configuration") as resp,
    ):
        document = await resp.json()
    assert document["issuer"] == kube.issuer
    assert document["jwks_uri"] == f"{kube.url}/openid/v1/jwks"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_serve_runs_until_cancelled() -> None:
    """serve() answers the API on its port until its task is cancelled, then lets it go."""
    port = free_port()
    config = KubeEmulatorConfig(callers=[{"token": GATEWAY_TOKEN}])
    task = asyncio.create_task(serve(config, host="127.0.0.1", port=port))
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        with contextlib.suppress(aiohttp.ClientConnectionError):
            async with client.ApiClient(kube_configuration(url)) as api:
                listed = await client.CoreV1Api(api).list_service_account_for_all_namespaces()
                assert listed.items == []
                break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("serve() never answered")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"{url}/emulator/state"):
                pass
