"""Caller-authentication stacks on loopback: the fake Kubernetes API (TokenReview, Namespaces),
a tiny OIDC issuer, the Databricks emulator and the gateway, all on real sockets.

``callers_stack(callers, namespaces=N)`` starts a gateway whose ``callers`` section is
``callers`` and whose Kubernetes client talks to ``kube`` (the fake API, with namespaces
``team-00``.. each holding ServiceAccount ``runner``, labelled ``tier=batch`` on even ones, and
``airflow`` with ServiceAccount ``scheduler``). ``{issuer}`` in a ``jwt_issuers[].issuer``
is replaced by the issuer's URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.emulator.kubernetes import KubeApiServer
from tests.callers.issuer import JwtIssuer
from tests.e2e.specs import spec
from tests.fixtures.gateway import GatewayStack, StackFactory, namespace_name
from tests.fixtures.kube_api import GATEWAY_TOKEN, KubeApiFactory, kube_config
from tests.support.http import session_fixture
from tests.support.jwt_issuer import ec_key, rsa_key

AUDIENCE = "lakegate"
RUNNER = "runner"
SCHEDULER = "system:serviceaccount:airflow:scheduler"

CallersStack = Callable[..., Awaitable[GatewayStack]]


def sha256_hex(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def submit_body(name: str) -> dict[str, Any]:
    return {"spec": spec(name, seconds=0.2)}


def kube_namespaces(count: int) -> dict[str, Any]:
    namespaces: dict[str, Any] = {
        namespace_name(i): {
            "labels": {"tier": "batch"} if i % 2 == 0 else {"tier": "interactive"},
            "service_accounts": {RUNNER: {}},
        }
        for i in range(count)
    }
    namespaces["airflow"] = {"service_accounts": {"scheduler": {}}}
    return namespaces


@pytest.fixture(scope="session")
def issuer_keys() -> dict[str, Any]:
    return {"rsa-1": rsa_key(), "ec-1": ec_key(), "rsa-2": rsa_key()}


@pytest.fixture
async def issuer(issuer_keys: dict[str, Any]) -> AsyncIterator[JwtIssuer]:
    """The OIDC issuer on a loopback port, publishing rsa-1 and ec-1 (rsa-2 held back)."""
    issuer = JwtIssuer(dict(issuer_keys), published={"rsa-1", "ec-1"})
    runner = web.AppRunner(issuer.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    issuer.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield issuer
    await runner.cleanup()


@pytest.fixture
async def kube(kube_api_factory: KubeApiFactory) -> KubeApiServer:
    """The fake Kubernetes API with ten team namespaces and the airflow one."""
    return await kube_api_factory(kube_config(namespaces=kube_namespaces(10)))


http = session_fixture("http")


def _fill_issuer(callers: dict[str, Any], issuer: JwtIssuer | None) -> dict[str, Any]:
    if issuer is None:
        return callers
    issuers = [
        {**entry, "issuer": entry["issuer"].replace("{issuer}", issuer.url)}
        for entry in callers.get("jwt_issuers", [])
    ]
    return {**callers, "jwt_issuers": issuers} if issuers else callers


@pytest.fixture
def callers_stack(
    gateway_stack_factory: StackFactory, kube: KubeApiServer, tmp_path: Path
) -> CallersStack:
    token_file = tmp_path / "gateway-token"
    token_file.write_text(GATEWAY_TOKEN, encoding="utf-8")

    async def start(
        callers: dict[str, Any],
        *,
        namespaces: int = 4,
        issuer: JwtIssuer | None = None,
        kubernetes: bool = True,
    ) -> GatewayStack:
        gateway: dict[str, Any] = {"callers": _fill_issuer(callers, issuer)}
        if kubernetes:
            gateway["kubernetes"] = {
                "mode": "explicit",
                "host": kube.url,
                "token_file": str(token_file),
            }
            # Identities here come from the tenant policies; no informer is needed.
            gateway["identity"] = {"discover_from_kubernetes": False}
        return await gateway_stack_factory(namespaces, gateway=gateway)

    return start
