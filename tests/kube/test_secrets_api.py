"""Reading tenants' Secrets from the fake Kubernetes API over a real socket."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.emulator.kubernetes import KubeApiServer
from gateway.errors import KubernetesError
from gateway.kube import KubeApiError, KubeClient, KubeConfig, KubeForbidden, KubeNotFound
from tests.fixtures.kube_api import (
    GATEWAY_TOKEN,
    GATEWAY_USER,
    TENANT_A,
    TENANT_A_PAT,
    TENANT_B,
    TENANT_B_CLIENT_SECRET,
)
from tests.kube.conftest import REQUEST_TIMEOUT, KubeFactory, explicit_config


async def test_read_secret_decodes_its_data(kube: KubeClient) -> None:
    """A secret's data comes back decoded from base64."""
    data = await kube.read_secret(TENANT_B, "databricks-oauth")
    assert data.text("client_secret") == TENANT_B_CLIENT_SECRET
    assert set(data) == {"client_id", "client_secret"}


async def test_missing_secret_is_not_found(kube: KubeClient) -> None:
    """An absent secret raises KubeNotFound naming the namespace and the secret."""
    with pytest.raises(KubeNotFound) as info:
        await kube.read_secret(TENANT_A, "databricks-oauth")
    assert info.value.http_status == 404
    assert "secret tenant-a/databricks-oauth" in info.value.message
    assert info.value.fields()["namespace"] == TENANT_A


async def test_forbidden_secret_quotes_rbac(kube: KubeClient, kube_api: KubeApiServer) -> None:
    """A secret RBAC hides raises KubeForbidden quoting the API server's refusal."""
    kube_api.deny("get", "secrets", namespace=TENANT_A)
    with pytest.raises(KubeForbidden) as info:
        await kube.read_secret(TENANT_A, "databricks-token")
    message = info.value.message
    assert message.startswith("Kubernetes RBAC forbids lakegate to read secret tenant-a/")
    assert f'User "{GATEWAY_USER}" cannot get resource "secrets"' in message
    assert 'in the namespace "tenant-a"' in message


async def test_secret_values_never_reach_the_logs(kube: KubeClient) -> None:
    """Reading a secret logs its keys at most, never a value."""
    with capture_logs() as logs:
        data = await kube.read_secret(TENANT_A, "databricks-token")
    assert data.text("token") == TENANT_A_PAT
    assert TENANT_A_PAT not in repr(logs)
    assert TENANT_A_PAT not in repr(data)


async def test_bad_gateway_credential_is_a_401(
    kube_api: KubeApiServer, kube_factory: KubeFactory
) -> None:
    """A caller token the API server does not know fails with 401, not as 'not found'."""
    kube = await kube_factory(explicit_config(kube_api.url, token="not-a-known-token"))
    with pytest.raises(KubeApiError) as info:
        await kube.read_secret(TENANT_A, "databricks-token")
    assert info.value.http_status == 401
    assert not isinstance(info.value, KubeNotFound | KubeForbidden)


async def test_unreachable_api_server_is_transient(kube_factory: KubeFactory) -> None:
    """A refused connection is a transient KubernetesError without an HTTP status."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kube = await kube_factory(explicit_config(f"http://127.0.0.1:{port}"))
    with pytest.raises(KubernetesError) as info:
        await kube.read_secret(TENANT_A, "databricks-token")
    assert info.value.transient
    assert info.value.http_status is None


async def test_in_cluster_token_with_newline_works(kube_api: KubeApiServer, tmp_path: Path) -> None:
    """The projected token file's trailing newline does not break the request header."""
    (tmp_path / "token").write_text(GATEWAY_TOKEN + "\n")
    (tmp_path / "ca.crt").write_text("unused over plain http\n")
    config = KubeConfig(
        mode="in-cluster",
        host=kube_api.url,
        token_file=str(tmp_path / "token"),
        ca_file=str(tmp_path / "ca.crt"),
        request_timeout=REQUEST_TIMEOUT,
    )
    environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    kube = await KubeClient.open(config, environ=environ)
    try:
        data = await kube.read_secret(TENANT_A, "databricks-token")
    finally:
        await kube.aclose()
    assert data.text("token") == TENANT_A_PAT
