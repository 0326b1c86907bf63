"""A stack where every source of secrets holds a canary, and every upstream echoes them.

Sources: tenant policies with inline values (a PAT, a client secret, a webhook secret), the
environment named by ``*_env`` keys, namespace Secrets in the fake Kubernetes API, the
gateway's own Kubernetes token file, and the API key callers present. The gateway is served
by ``GatewayRunner``, as ``lakegate serve`` serves it, and every answer it gives is recorded
(status line, headers, body) by ``Recorder``.

Echoes, once every namespace has run a job (so lakegate holds each value): the token endpoint
answering 401 with every canary in its error body; the Jobs API refusing runs/submit (400)
and failing runs/get (500) likewise; and the Kubernetes API, whose Status messages name the
caller, knowing the gateway by a user name made of every canary, refusing a Secret read.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.app import Overrides, create_app
from gateway.appkeys import INFORMER
from gateway.emulator.databricks import EmulatorConfig, EmulatorServer
from gateway.emulator.kubernetes import KubeApiServer, KubeEmulatorConfig
from gateway.serving import GatewayRunner
from gateway.settings import Settings
from tests.e2e.canaries import Canaries
from tests.e2e.specs import spec

PAT_KINDS = ("inline-pat", "env-pat", "secret-pat")
OAUTH_KINDS = ("inline-oauth", "env-oauth", "secret-oauth")
NAMESPACES = PAT_KINDS + OAUTH_KINDS
# No tenant policy: its identity is discovered from its ServiceAccounts and Secrets.
DISCOVERED = "discovered"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED", "SKIPPED", "INTERNAL_ERROR", "REJECTED"}
Cleanups = list[Callable[[], Awaitable[None]]]


@dataclass
class CanaryStack:
    canaries: Canaries
    emulator: EmulatorServer
    kube: KubeApiServer
    settings: Settings
    url: str
    port: int
    session: aiohttp.ClientSession
    client_ids: dict[str, str] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)

    @property
    def api_key(self) -> str:
        return self.canaries.by_source["API key"]

    async def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """One request as the API-key caller; the whole answer is kept for the scan."""
        sent = {"Authorization": f"Bearer {self.api_key}", **(headers or {})}
        async with self.session.request(method, self.url + path, json=body, headers=sent) as resp:
            text = await resp.text()
            head = "".join(f"{k}: {v}\n" for k, v in resp.headers.items())
            self.seen.append(f"HTTP {resp.status} {resp.reason}\n{head}\n{text}")
            return resp.status, _json(text)

    async def submit(self, namespace: str, name: str, seconds: float = 0.2) -> tuple[int, Any]:
        return await self.call(
            "POST", f"/v1/namespaces/{namespace}/runs", {"spec": spec(name, seconds=seconds)}
        )

    async def wait(self, runs: dict[int, str], within: float = 30) -> dict[int, dict[str, Any]]:
        """Read each run (id -> namespace) until it has ended; the final runs by id."""
        final: dict[int, dict[str, Any]] = {}
        async with asyncio.timeout(within):
            while len(final) < len(runs):
                for run_id, namespace in runs.items():
                    if run_id not in final:
                        _, run = await self.call("GET", f"/v1/namespaces/{namespace}/runs/{run_id}")
                        if run["state"] in TERMINAL:
                            final[run_id] = run
                await asyncio.sleep(0.1)
        return final

    async def emulator_admin(self, path: str, body: dict[str, Any]) -> None:
        # The emulator's own API: the test's equipment, not the gateway's answers.
        async with self.session.post(self.emulator.url + path, json=body) as resp:
            assert resp.status == 200, await resp.text()


def _json(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def plant(canaries: Canaries) -> None:
    """One canary per source; the Basic form of each OAuth client too."""
    canaries.plant("Kubernetes token file", "kubetok")
    canaries.plant("API key", "lgkey")
    canaries.plant("inline PAT", "inpat")
    canaries.plant("inline client secret", "incs")
    canaries.plant("env PAT", "envpat")
    canaries.plant("env client secret", "envcs")
    canaries.plant("Secret PAT", "secpat")
    canaries.plant("Secret client secret", "seccs")
    # Webhook secrets are written whsec_<base64>, as Standard Webhooks writes them.
    for source in ("inline webhook secret", "env webhook secret"):
        canaries.add(source, "whsec_" + base64.b64encode(os.urandom(24)).decode())


def _policies(c: dict[str, str], ids: dict[str, str]) -> dict[str, Any]:
    return {
        "inline-pat": {
            "identity": {"type": "pat", "token": c["inline PAT"]},
            "webhooks": {"secret_value": c["inline webhook secret"]},
        },
        "env-pat": {
            "identity": {"type": "pat", "token_env": "CANARY_PAT"},
            "webhooks": {"secret_env": "CANARY_WEBHOOK"},
        },
        "secret-pat": {"identity": {"type": "pat", "secret": {"name": "databricks-token"}}},
        "inline-oauth": {
            "identity": {
                "type": "oauth-m2m",
                "client_id": ids["inline-oauth"],
                "client_secret": c["inline client secret"],
            }
        },
        "env-oauth": {
            "identity": {
                "type": "oauth-m2m",
                "client_id": ids["env-oauth"],
                "client_secret_env": "CANARY_CLIENT_SECRET",
            }
        },
        "secret-oauth": {"identity": {"type": "oauth-m2m", "secret": {"name": "databricks-oauth"}}},
    }


def _emulator(c: dict[str, str], ids: dict[str, str]) -> EmulatorConfig:
    pats = {"inline-pat": "inline PAT", "env-pat": "env PAT", "secret-pat": "Secret PAT"}
    secrets = {
        "inline-oauth": "inline client secret",
        "env-oauth": "env client secret",
        "secret-oauth": "Secret client secret",
    }
    return EmulatorConfig.model_validate(
        {
            "random_seed": 5,
            "lifecycle": {
                "pending_seconds": 0.1,
                "running_seconds": 0.2,
                "terminating_seconds": 0.1,
            },
            "limits": {"max_active_runs": 10_000},
            "identity": {
                "users": [{"name": f"{ns}@example.com", "pats": [c[k]]} for ns, k in pats.items()],
                "service_principals": [
                    {"name": f"sp-{ns}", "application_id": ids[ns], "secrets": [c[k]]}
                    for ns, k in secrets.items()
                ],
            },
        }
    )


def _kube(c: Canaries, ids: dict[str, str]) -> KubeEmulatorConfig:
    values = c.by_source
    namespaces: dict[str, Any] = {ns: {} for ns in NAMESPACES}
    namespaces["secret-pat"] = {
        "secrets": {"databricks-token": {"string_data": {"token": values["Secret PAT"]}}}
    }
    namespaces[DISCOVERED] = {
        "secrets": {"databricks-token": {"string_data": {"token": values["Secret PAT"]}}}
    }
    namespaces["secret-oauth"] = {
        "secrets": {
            "databricks-oauth": {
                "string_data": {
                    "client_id": ids["secret-oauth"],
                    "client_secret": values["Secret client secret"],
                }
            }
        }
    }
    # The API server names the caller in every Forbidden Status: here that name echoes every
    # canary, as an authenticating proxy or a webhook quoting what it got might.
    caller = {"token": values["Kubernetes token file"], "username": "echo " + c.echo()}
    return KubeEmulatorConfig.model_validate(
        {
            "callers": [caller],
            "namespaces": namespaces,
            "watch": {"bookmark_interval_seconds": None, "default_timeout_seconds": 60},
        }
    )


async def start_canary_stack(
    kube_api_factory: Callable[..., Awaitable[KubeApiServer]],
    tmp_path: Path,
    cleanups: Cleanups,
) -> CanaryStack:
    canaries = Canaries()
    plant(canaries)
    ids = {ns: str(uuid.uuid4()) for ns in OAUTH_KINDS}
    values = canaries.by_source
    for ns, key in (
        ("inline-oauth", "inline client secret"),
        ("env-oauth", "env client secret"),
        ("secret-oauth", "Secret client secret"),
    ):
        basic = base64.b64encode(f"{ids[ns]}:{values[key]}".encode()).decode()
        canaries.add(f"{key} (Basic)", basic)
    kube = await kube_api_factory(_kube(canaries, ids))
    emulator = EmulatorServer(_emulator(values, ids))
    await emulator.start()
    cleanups.append(emulator.stop)
    token_file = tmp_path / "kube-token"
    token_file.write_text(values["Kubernetes token file"] + "\n", encoding="utf-8")
    raw: dict[str, Any] = {
        "store": {"sqlite_path": str(tmp_path / "ledger.db")},
        "databricks": {
            "retry_deadline_seconds": 10,
            "retry_initial_seconds": 0.05,
            "retry_max_seconds": 0.3,
            "request_timeout_seconds": 5,
        },
        "poller": {"min_interval_seconds": 0.1, "max_interval_seconds": 0.5},
        "kubernetes": {"mode": "explicit", "host": kube.url, "token_file": str(token_file)},
        "callers": {
            "methods": ["api_key"],
            "api_keys": [
                {
                    "name": "canary",
                    "sha256": hashlib.sha256(values["API key"].encode()).hexdigest(),
                    "namespaces": [*NAMESPACES, DISCOVERED],
                }
            ],
        },
        "workspaces": {"emulated": {"host": emulator.url}},
        "tenants": {
            "defaults": {
                "workspace": "emulated",
                "quotas": {"max_active_runs": 10_000, "max_queued_runs": 10_000, "burst": 1_000},
            },
            "namespaces": _policies(values, ids),
        },
    }
    environ = {
        "CANARY_PAT": values["env PAT"],
        "CANARY_CLIENT_SECRET": values["env client secret"],
        "CANARY_WEBHOOK": values["env webhook secret"],
    }
    settings = Settings.model_validate(raw)
    app = create_app(
        settings, Overrides(environ=environ, poll_idle_seconds=0.05, inline_submit_seconds=5)
    )
    runner = GatewayRunner(app, access_log=None)
    await runner.setup()
    cleanups.append(runner.cleanup)
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    session = aiohttp.ClientSession()
    cleanups.append(session.close)
    async with asyncio.timeout(5):
        await app[INFORMER].ready.wait()
    return CanaryStack(
        canaries, emulator, kube, settings, f"http://127.0.0.1:{port}", port, session, ids
    )
