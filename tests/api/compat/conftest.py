"""The facade's stack: the Databricks emulator, the fake Kubernetes API and the gateway, with
callers authenticated by ServiceAccount tokens (TokenReview), as in a cluster.

``compat_stack``
    Namespaces ``team-00`` (a PAT user of its own) and ``team-01`` (an OAuth service principal
    of its own) each hold a ServiceAccount ``scheduler``; ``ops/airflow`` is granted both.
    ``stack.token(namespace)`` mints a caller token, ``stack.sdk(token)`` gives the official
    ``WorkspaceClient`` with that token as its PAT and the gateway as its host (synchronous:
    call it through ``in_thread``), ``stack.http`` is a plain aiohttp session for requests
    the SDK would never send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import pytest

from gateway.app import Overrides
from gateway.emulator.kubernetes import KubeApiServer
from tests.fixtures.gateway import GatewayStack, StackFactory
from tests.fixtures.kube_api import GATEWAY_TOKEN, KubeApiFactory, kube_config

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

T = TypeVar("T")

TEAM_A = "team-00"
TEAM_B = "team-01"
OPS = "ops"
SCHEDULER = "scheduler"
AIRFLOW = "airflow"
CALLER_AUDIENCE = "lakegate"


async def in_thread(fn: Callable[[], T]) -> T:
    """Run a synchronous SDK call off the loop that serves the gateway and the emulator."""
    return await asyncio.to_thread(fn)


@dataclass
class CompatStack:
    gateway: GatewayStack
    kube: KubeApiServer

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def http(self) -> aiohttp.ClientSession:
        return self.gateway.session

    def token(self, namespace: str, account: str = SCHEDULER) -> str:
        """A ServiceAccount token for the gateway's audience, as a pod would have it."""
        return self.kube.mint_token(namespace, account, [CALLER_AUDIENCE])

    def headers(self, token: str, namespace: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}"}
        if namespace is not None:
            headers["X-Lakegate-Namespace"] = namespace
        return headers

    def sdk(
        self, token: str, *, host: str | None = None, retry_timeout_seconds: int = 10
    ) -> WorkspaceClient:
        """The official SDK, unchanged: the gateway is its host, the caller token its PAT.

        Every setting is explicit, so neither the environment nor ~/.databrickscfg can change
        what the test exercises.
        """
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.config import Config

        config = Config(
            host=host or self.url,
            token=token,
            auth_type="pat",
            retry_timeout_seconds=retry_timeout_seconds,
            http_timeout_seconds=10,
        )
        return WorkspaceClient(config=config)

    def remote_runs(self, name: str) -> list[dict[str, Any]]:
        """The emulator's runs named ``name``: what reached Databricks, and as whom."""
        return [run for run in self.gateway.emulator.runs() if run["run_name"] == name]


def _kube_namespaces() -> dict[str, Any]:
    account = {"service_accounts": {SCHEDULER: {}}}
    return {TEAM_A: account, TEAM_B: account, OPS: {"service_accounts": {AIRFLOW: {}}}}


@pytest.fixture
async def compat_stack(
    gateway_stack_factory: StackFactory, kube_api_factory: KubeApiFactory, tmp_path: Path
) -> CompatStack:
    kube = await kube_api_factory(kube_config(namespaces=_kube_namespaces()))
    token_file = tmp_path / "kube-token"
    token_file.write_text(GATEWAY_TOKEN + "\n")
    gateway = await gateway_stack_factory(
        namespaces=2,
        # Short waits, so tests of a slow or absent Databricks take seconds: the inline submit
        # gives up after 2 s (the run stays held), a failing call after 2 s of retries.
        overrides=Overrides(environ={}, poll_idle_seconds=0.05, inline_submit_seconds=2),
        gateway={
            "databricks": {
                "retry_deadline_seconds": 2,
                "retry_initial_seconds": 0.05,
                "retry_max_seconds": 0.5,
                "request_timeout_seconds": 5,
            },
            "kubernetes": {"mode": "explicit", "host": kube.url, "token_file": str(token_file)},
            # Identities come from the tenant policy here; nothing to discover.
            "identity": {"discover_from_kubernetes": False},
            "callers": {
                "methods": ["kubernetes"],
                "kubernetes": {"audiences": [CALLER_AUDIENCE]},
                "grants": [
                    {
                        "subject": f"system:serviceaccount:{OPS}:{AIRFLOW}",
                        "namespaces": [TEAM_A, TEAM_B],
                    }
                ],
            },
        },
    )
    return CompatStack(gateway=gateway, kube=kube)
