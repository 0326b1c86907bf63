"""An Azure stack on loopback: the Databricks emulator (also playing Entra ID) and the gateway
in-process on SQLite, whose run clock is the emulator's, so moving the emulator's clock past a
token's expiry moves lakegate's judgement of it too.

``azure_stack_factory``
    ``await factory(tenants=..., lifecycle=..., limits=..., retry_deadline_seconds=...,
    inline_submit_seconds=...)`` starts both; ``tenants`` is the tenant policy by namespace
    (identities named by the constants below). Entra tenant
    ``TENANT`` holds app ``APP`` (client secret ``APP_SECRET``) and app ``NO_DEVOPS_APP``,
    to which Entra refuses Azure DevOps tokens (not assigned). A PAT user ``PAT_USER`` exists
    too. Everything stops at teardown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.app import Overrides, create_app
from gateway.cli.client import LakegateClient, Run
from gateway.cli.errors import ApiError
from gateway.cli.retry import ClientRetry
from gateway.emulator.databricks import EmulatorConfig, EmulatorServer
from gateway.serving import GatewayRunner, Listener, start_site
from gateway.settings import Settings
from tests.support.http import opened

TENANT = "72f988bf-0000-4000-8000-00000000a17e"
APP = "azure-git-app"
APP_ID = "a17e0000-0000-4000-8000-000000000001"
APP_SECRET = "azure-git-app-secret-value-00000001"
NO_DEVOPS_APP = "azure-no-devops-app"
NO_DEVOPS_ID = "a17e0000-0000-4000-8000-000000000002"
NO_DEVOPS_SECRET = "azure-no-devops-secret-value-000002"
PAT_USER = "pat-user@example.com"
PAT = "dapi" + "7" * 32
DEVOPS_RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"
ADO_URL = "https://dev.azure.com/org/project/_git/repo"
FAST = {"pending_seconds": 0.1, "running_seconds": 0.2, "terminating_seconds": 0.1}
NO_RETRY = ClientRetry(attempts=1)
CREDENTIALS_PATH = "/api/2.0/git-credentials"


def azure_identity(client_id: str = APP_ID, secret: str = APP_SECRET) -> dict[str, Any]:
    return {
        "type": "azure-client-secret",
        "tenant_id": TENANT,
        "client_id": client_id,
        "client_secret": secret,
    }


def ado_spec(
    name: str,
    *,
    per_task: bool = False,
    provider: str = "azureDevOpsServices",
    seconds: float | None = None,
    queue: bool = False,
) -> dict[str, Any]:
    """A run whose one task takes its notebook from an Azure DevOps repository; ``seconds``
    of the emulator's clock in RUNNING, ``queue`` to wait in Databricks' queue when full."""
    source = {"git_url": ADO_URL, "git_provider": provider, "git_branch": "main"}
    notebook: dict[str, Any] = {"notebook_path": "notebooks/etl", "source": "GIT"}
    if seconds is not None:
        notebook["base_parameters"] = {"lakegate_emulator_seconds": str(seconds)}
    task: dict[str, Any] = {
        "task_key": "main",
        "existing_cluster_id": "0101-000000-test",
        "notebook_task": notebook,
    }
    spec: dict[str, Any] = {"run_name": name, "tasks": [task]}
    if queue:
        spec["queue"] = {"enabled": True}
    if per_task:
        task["git_source"] = source
    else:
        spec["git_source"] = source
    return spec


@dataclass
class AzureStack:
    emulator: EmulatorServer
    app: web.Application
    settings: Settings
    session: aiohttp.ClientSession
    url: str

    def client(self) -> LakegateClient:
        return LakegateClient(self.url, session=self.session, retry=NO_RETRY)

    async def submit(self, namespace: str, spec: Mapping[str, Any]) -> Run:
        submitted = await self.client().submit_body(namespace, {"spec": dict(spec)})
        assert submitted.status == 201, submitted
        return submitted.run

    async def refused(self, namespace: str, spec: Mapping[str, Any]) -> ApiError:
        """The problem a submission is refused with; no run may reach Databricks for it."""
        before = len(self.emulator.runs())
        with pytest.raises(ApiError) as info:
            await self.client().submit_body(namespace, {"spec": dict(spec)})
        assert len(self.emulator.runs()) == before
        return info.value

    async def finish(self, namespace: str, run: Run) -> Run:
        async with asyncio.timeout(15):
            return await self.client().wait(namespace, run["id"], poll_interval=0.05)

    def devops_tokens(self) -> int:
        """Azure DevOps tokens Entra issued."""
        issued = self.emulator.stats()["identity"]["entra"]["tokens_issued"]["by_resource"]
        return int(issued.get("azure-devops", 0))

    def entra_requests(self) -> int:
        """Requests to Entra's token endpoints, for any resource, answered or not."""
        return int(self.emulator.stats()["identity"]["entra"]["token_requests"]["total"])

    def credential_calls(self, method: str | None = None, status: str | None = None) -> int:
        """Git Credentials API requests the workspace served (of ``method``, answered with
        ``status``, if given)."""
        requests = self.emulator.stats()["requests"]
        return sum(
            r["count"]
            for r in requests
            if r["path"].startswith(CREDENTIALS_PATH)
            and method in (None, r["method"])
            and status in (None, r["status"])
        )


def _emulator_config(lifecycle: Mapping[str, Any], limits: Mapping[str, Any]) -> EmulatorConfig:
    return EmulatorConfig.model_validate(
        {
            "random_seed": 5,
            "lifecycle": dict(lifecycle),
            "limits": {"max_active_runs": 100_000, "max_queued_runs": 100_000, **limits},
            "identity": {"users": [{"name": PAT_USER, "pats": [PAT]}]},
            "entra": {
                "tenants": [
                    {
                        "tenant_id": TENANT,
                        "apps": [
                            {"client_id": APP_ID, "name": APP, "secrets": [APP_SECRET]},
                            {
                                "client_id": NO_DEVOPS_ID,
                                "name": NO_DEVOPS_APP,
                                "secrets": [NO_DEVOPS_SECRET],
                                "unassigned_resources": [DEVOPS_RESOURCE],
                            },
                        ],
                    }
                ]
            },
        }
    )


AzureStackFactory = Callable[..., Awaitable[AzureStack]]


@pytest.fixture
async def azure_stack_factory(tmp_path: Path) -> AsyncIterator[AzureStackFactory]:
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def start(
        *,
        tenants: Mapping[str, Any],
        lifecycle: Mapping[str, Any] = FAST,
        limits: Mapping[str, Any] | None = None,
        retry_deadline_seconds: float = 5,
        inline_submit_seconds: float = 5,
    ) -> AzureStack:
        emulator = EmulatorServer(_emulator_config(lifecycle, limits or {}))
        await emulator.start()
        cleanups.append(emulator.stop)
        settings = Settings.model_validate(
            {
                "store": {"sqlite_path": str(tmp_path / "ledger.db")},
                "databricks": {
                    "retry_deadline_seconds": retry_deadline_seconds,
                    "retry_initial_seconds": 0.05,
                    "retry_max_seconds": 0.2,
                    "request_timeout_seconds": 5,
                },
                "poller": {"min_interval_seconds": 0.1, "max_interval_seconds": 0.3},
                "identity": {"azure_authority": f"{emulator.url}/"},
                "callers": {"methods": ["none"]},
                "workspaces": {"emulated": {"host": emulator.url}},
                "tenants": {
                    "defaults": {
                        "workspace": "emulated",
                        "quotas": {
                            "max_active_runs": 10_000,
                            "max_queued_runs": 10_000,
                            "submissions_per_minute": 1_000_000,
                            "burst": 1_000,
                        },
                    },
                    "namespaces": dict(tenants),
                },
            }
        )

        def clock() -> datetime:
            return datetime.fromtimestamp(emulator.clock.now(), UTC)

        over = Overrides(
            environ={},
            clock=clock,
            poll_idle_seconds=0.05,
            inline_submit_seconds=inline_submit_seconds,
        )
        app = create_app(settings, over)
        runner = GatewayRunner(app, access_log=None)
        await runner.setup()
        cleanups.append(runner.cleanup)
        port = await start_site(runner, Listener(app, "127.0.0.1", 0))
        session = opened(cleanups)
        return AzureStack(emulator, app, settings, session, f"http://127.0.0.1:{port}")

    try:
        yield start
    finally:
        for cleanup in reversed(cleanups):
            await cleanup()
