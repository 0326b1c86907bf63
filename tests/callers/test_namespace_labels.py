"""Namespace labels for selector grants, read from the fake Kubernetes API."""

from __future__ import annotations

import aiohttp
import pytest
from kubernetes_asyncio import client as k8s

from gateway.emulator.kubernetes import KubeApiServer
from gateway.kube import KubeClient, KubeForbidden
from tests.fixtures.kube_api import kube_configuration


@pytest.fixture
async def client(kube: KubeApiServer) -> KubeClient:
    api = k8s.ApiClient(kube_configuration(kube.url))
    return KubeClient(api)


async def test_labels_are_read_and_a_missing_namespace_is_none(
    kube: KubeApiServer, client: KubeClient
) -> None:
    """A labelled namespace answers its labels; one that does not exist answers None."""
    async with client:
        assert await client.namespace_labels("team-00") == {"tier": "batch"}
        assert await client.namespace_labels("airflow") == {}
        assert await client.namespace_labels("ghost") is None


async def test_label_changes_are_seen(kube: KubeApiServer, client: KubeClient) -> None:
    """Labels set through the emulator's admin API (in-process and HTTP) are served."""
    kube.label_namespace("team-01", {"tier": "batch", "extra": "1"})
    async with aiohttp.ClientSession() as http:
        url = f"{kube.url}/emulator/namespaces/team-01"
        async with http.patch(url, json={"labels": {"extra": None}}) as response:
            assert response.status == 200
    async with client:
        assert await client.namespace_labels("team-01") == {"tier": "batch"}


async def test_a_refused_read_is_an_error_not_a_missing_namespace(
    kube: KubeApiServer, client: KubeClient
) -> None:
    """RBAC refusing 'get namespaces' raises, so an outage never reads as 'no such namespace'."""
    kube.deny("get", "namespaces")
    async with client:
        with pytest.raises(KubeForbidden):
            await client.namespace_labels("team-00")
