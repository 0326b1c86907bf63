"""ServiceAccount reads and lists, Secrets, authentication, RBAC and Status errors, as the real
kubernetes-asyncio client sees them."""

from __future__ import annotations

import base64

import aiohttp
import pytest
from kubernetes_asyncio import client

from gateway.emulator.kubernetes import KubeApiServer
from tests.emulator._kube import status_of, uid_of
from tests.fixtures.kube_api import (
    GATEWAY_USER,
    IDENTITY_LABEL,
    TENANT_A,
    TENANT_A_PAT,
    kube_configuration,
)


async def test_read_a_service_account(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """GET by name answers the object with kind, labels, annotations, uid and a string RV."""
    sa = await client.CoreV1Api(kube_client).read_namespaced_service_account(
        "billing-api", TENANT_A
    )
    assert (sa.kind, sa.api_version) == ("ServiceAccount", "v1")
    assert sa.metadata.labels == {IDENTITY_LABEL: "true"}
    assert sa.metadata.annotations == {"lakegate.io/databricks-audience": "databricks"}
    assert sa.metadata.uid == uid_of(kube_api, TENANT_A, "billing-api")
    assert isinstance(sa.metadata.resource_version, str)
    assert sa.metadata.creation_timestamp.tzinfo is not None


async def test_list_across_and_within_namespaces(kube_client: client.ApiClient) -> None:
    """Lists across namespaces and in one carry the list resourceVersion; empty means []."""
    core = client.CoreV1Api(kube_client)
    everything = await core.list_service_account_for_all_namespaces()
    assert [(i.metadata.namespace, i.metadata.name) for i in everything.items] == [
        ("lakegate-system", "lakegate"),
        ("tenant-a", "billing-api"),
        ("tenant-a", "default"),
        ("tenant-b", "etl"),
    ]
    assert int(everything.metadata.resource_version) > 0
    mine = await core.list_namespaced_service_account(TENANT_A)
    assert {i.metadata.name for i in mine.items} == {"billing-api", "default"}
    empty = await core.list_namespaced_service_account("nowhere")
    assert empty.items == []


async def test_list_by_label_selector(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """Label selectors reach the server URL-encoded and select with every operator."""
    kube_api.create_service_account("tenant-c", "x", labels={"tier": "gold", "team": "c"})
    core = client.CoreV1Api(kube_client)

    async def select(selector: str) -> set[str]:
        found = await core.list_service_account_for_all_namespaces(label_selector=selector)
        return {i.metadata.name for i in found.items}

    assert await select(f"{IDENTITY_LABEL}=true") == {"billing-api", "etl"}
    assert await select(f"{IDENTITY_LABEL}==true,!tier") == {"billing-api", "etl"}
    assert await select("tier in (gold, silver),team notin (a)") == {"x"}
    assert await select(f"{IDENTITY_LABEL}!=true") == {"lakegate", "default", "x"}
    assert await select("team") == {"x"}


async def test_list_by_field_selector(kube_client: client.ApiClient) -> None:
    """metadata.name and metadata.namespace field selectors narrow a list."""
    core = client.CoreV1Api(kube_client)
    found = await core.list_service_account_for_all_namespaces(
        field_selector="metadata.namespace=tenant-a,metadata.name!=default"
    )
    assert [i.metadata.name for i in found.items] == ["billing-api"]


async def test_bad_selectors_are_400(kube_client: client.ApiClient) -> None:
    """A selector that does not parse is a 400 BadRequest Status."""
    core = client.CoreV1Api(kube_client)
    with pytest.raises(client.ApiException) as info:
        await core.list_service_account_for_all_namespaces(label_selector="a in ()")
    assert info.value.status == 400
    assert status_of(info.value)["reason"] == "BadRequest"
    with pytest.raises(client.ApiException) as info:
        await core.list_service_account_for_all_namespaces(field_selector="spec.x=1")
    assert status_of(info.value)["message"] == "field label not supported: spec.x"


async def test_list_pages_with_limit_and_continue(kube_client: client.ApiClient) -> None:
    """limit cuts a list, continue resumes it after the last item under the same version."""
    core = client.CoreV1Api(kube_client)
    first = await core.list_service_account_for_all_namespaces(limit=3)
    assert len(first.items) == 3
    assert first.metadata.remaining_item_count == 1
    rest = await core.list_service_account_for_all_namespaces(
        limit=3, _continue=first.metadata._continue
    )
    assert [i.metadata.name for i in rest.items] == ["etl"]
    assert rest.metadata._continue is None
    assert rest.metadata.resource_version == first.metadata.resource_version


async def test_read_a_secret_base64(kube_client: client.ApiClient) -> None:
    """Secret data is standard base64, left undecoded by the client."""
    secret = await client.CoreV1Api(kube_client).read_namespaced_secret(
        "databricks-token", TENANT_A
    )
    assert secret.type == "Opaque"
    assert base64.b64decode(secret.data["token"]).decode() == TENANT_A_PAT


async def test_missing_objects_are_404_status(kube_client: client.ApiClient) -> None:
    """A missing Secret or ServiceAccount is 404 NotFound with name and resource in details."""
    core = client.CoreV1Api(kube_client)
    with pytest.raises(client.ApiException) as info:
        await core.read_namespaced_secret("db-creds", TENANT_A)
    assert (info.value.status, info.value.reason) == (404, "Not Found")
    assert status_of(info.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'secrets "db-creds" not found',
        "reason": "NotFound",
        "details": {"name": "db-creds", "kind": "secrets"},
        "code": 404,
    }
    with pytest.raises(client.ApiException) as info:
        await core.read_namespaced_service_account("ghost", TENANT_A)
    assert status_of(info.value)["message"] == 'serviceaccounts "ghost" not found'


@pytest.mark.parametrize("token", [None, "not-a-known-token"])
async def test_unauthenticated_callers_get_401(kube_api: KubeApiServer, token: str | None) -> None:
    """No token or an unknown one is 401 Unauthorized, before anything is looked up."""
    async with client.ApiClient(kube_configuration(kube_api.url, token)) as api:
        with pytest.raises(client.ApiException) as info:
            await client.CoreV1Api(api).read_namespaced_secret("databricks-token", TENANT_A)
    assert info.value.status == 401
    assert status_of(info.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


async def test_denied_reads_are_403_with_the_reference_message(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """A deny rule gives 403 Forbidden, before the 404 a missing object would give."""
    kube_api.deny("get", "secrets", namespace=TENANT_A)
    core = client.CoreV1Api(kube_client)
    with pytest.raises(client.ApiException) as info:
        await core.read_namespaced_secret("db-creds", TENANT_A)
    assert info.value.status == 403
    body = status_of(info.value)
    assert body["message"] == (
        f'secrets "db-creds" is forbidden: User "{GATEWAY_USER}" cannot get resource "secrets" '
        'in API group "" in the namespace "tenant-a"'
    )
    assert (body["reason"], body["details"]) == (
        "Forbidden",
        {"name": "db-creds", "kind": "secrets"},
    )
    # Other namespaces are untouched; allow() lifts the rule.
    await core.read_namespaced_secret("databricks-oauth", "tenant-b")
    kube_api.allow()
    await core.read_namespaced_secret("databricks-token", TENANT_A)


async def test_a_denied_cluster_list_says_cluster_scope(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """Denying list on serviceaccounts refuses the all-namespaces list at the cluster scope."""
    kube_api.deny("list", "serviceaccounts")
    with pytest.raises(client.ApiException) as info:
        await client.CoreV1Api(kube_client).list_service_account_for_all_namespaces()
    assert status_of(info.value)["message"] == (
        f'serviceaccounts is forbidden: User "{GATEWAY_USER}" cannot list resource '
        '"serviceaccounts" in API group "" at the cluster scope'
    )


async def test_service_account_tokens_authenticate_callers(kube_api: KubeApiServer) -> None:
    """A token this server minted for a live ServiceAccount is accepted as the caller's."""
    token = kube_api.mint_token("lakegate-system", "lakegate")
    async with client.ApiClient(kube_configuration(kube_api.url, token)) as api:
        await client.CoreV1Api(api).read_namespaced_secret("databricks-token", TENANT_A)
        kube_api.delete_service_account("lakegate-system", "lakegate")
        with pytest.raises(client.ApiException) as info:
            await client.CoreV1Api(api).read_namespaced_secret("databricks-token", TENANT_A)
    assert info.value.status == 401


async def test_unknown_routes_and_methods_answer_status(kube_api: KubeApiServer) -> None:
    """Paths the fake does not serve are 404 and wrong methods 405, both as Status objects."""
    headers = {"Authorization": "Bearer lakegate-test-caller-token-0000000000000000"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{kube_api.url}/api/v1/pods") as resp:
            assert resp.status == 404
            assert (await resp.json())[
                "message"
            ] == "the server could not find the requested resource"
        async with http.delete(f"{kube_api.url}/api/v1/namespaces/a/secrets/s") as resp:
            assert resp.status == 405
            assert (await resp.json())["kind"] == "Status"


async def test_requests_are_counted_by_verb_resource_and_status(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """Stats count each answered request by Kubernetes verb, resource and status."""
    core = client.CoreV1Api(kube_client)
    await core.read_namespaced_secret("databricks-token", TENANT_A)
    with pytest.raises(client.ApiException):
        await core.read_namespaced_secret("nope", TENANT_A)
    assert kube_api.request_count("get", "secrets") == 2
    assert kube_api.request_count("get", "secrets", 404) == 1
    assert kube_api.stats()["by_status"] == {"200": 1, "404": 1}


async def test_a_continue_token_older_than_the_history_is_410(
    kube_api: KubeApiServer, kube_client: client.ApiClient
) -> None:
    """Once the list's version is compacted away, its continue token gets 410 Expired."""
    core = client.CoreV1Api(kube_client)
    first = await core.list_service_account_for_all_namespaces(limit=1)
    kube_api.expire_watches()
    with pytest.raises(client.ApiException) as info:
        await core.list_service_account_for_all_namespaces(
            limit=1, _continue=first.metadata._continue
        )
    assert (info.value.status, status_of(info.value)["reason"]) == (410, "Expired")


def test_a_no_op_patch_changes_no_resource_version(kube_api: KubeApiServer) -> None:
    """Labelling a ServiceAccount with the labels it has leaves its resourceVersion alone."""
    before = kube_api.service_account(TENANT_A, "billing-api")
    after = kube_api.label_service_account(TENANT_A, "billing-api", {IDENTITY_LABEL: "true"})
    assert before == after
