"""``lakegate demo``: the gateway and an emulated Databricks workspace in one process.

Every start makes fresh credentials (no secret is written in a file), gives them to the
emulated workspace as a user PAT and two OAuth service principals, and builds tenant settings
for three namespaces that use them. The ledger is SQLite in a local folder, or PostgreSQL
(``--store postgres --dsn ...``). The process prints
the URL and a ready curl line, and runs until interrupted.

Caller authentication is off (method ``none``): anyone who reaches the port may act for any
namespace. The gateway logs a warning saying so at start-up, /readyz reports it, and the
banner repeats it; the demo listens on loopback only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import signal
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import __version__
from gateway.app import create_app
from gateway.emulator.databricks import EmulatorConfig
from gateway.emulator.databricks.server import EmulatorServer
from gateway.logs import get_logger
from gateway.serving import GatewayRunner, Listener, start_site
from gateway.settings import Settings
from gateway.webhooks.demo_receiver import DemoReceiver
from gateway.webhooks.signing import parse_secrets

log = get_logger(__name__)

DEMO_NAMESPACES = ("team-a", "team-b", "team-c")
# team-c has small limits, so queueing is easy to see: a few submissions in a row queue.
DEMO_POLICY: dict[str, dict[str, object]] = {
    "team-c": {
        "quotas": {
            "max_active_runs": 2,
            "max_queued_runs": 10,
            "submissions_per_minute": 30,
            "burst": 10,
        }
    }
}


@dataclass(frozen=True)
class DemoCredentials:
    """One identity per demo namespace, made for this start only."""

    identities: dict[str, dict[str, Any]]
    service_principals: list[dict[str, Any]]
    users: list[dict[str, Any]]


def make_credentials() -> DemoCredentials:
    pat = "dapi" + secrets.token_hex(16)
    sp_a = {"name": "lakegate-team-a", "application_id": str(uuid.uuid4())}
    sp_c = {"name": "lakegate-team-c", "application_id": str(uuid.uuid4())}
    secret_a, secret_c = "dose" + secrets.token_hex(16), "dose" + secrets.token_hex(16)
    return DemoCredentials(
        identities={
            "team-a": {
                "type": "oauth-m2m",
                "client_id": sp_a["application_id"],
                "client_secret": secret_a,
            },
            "team-b": {"type": "pat", "token": pat},
            "team-c": {
                "type": "oauth-m2m",
                "client_id": sp_c["application_id"],
                "client_secret": secret_c,
            },
        },
        service_principals=[{**sp_a, "secrets": [secret_a]}, {**sp_c, "secrets": [secret_c]}],
        users=[{"name": "team-b@example.com", "pats": [pat]}],
    )


def emulator_config(creds: DemoCredentials) -> EmulatorConfig:
    return EmulatorConfig.model_validate(
        {
            "identity": {"users": creds.users, "service_principals": creds.service_principals},
            # A few seconds a phase, so each state can be watched.
            "lifecycle": {
                "pending_seconds": 3,
                "running_seconds": 12,
                "terminating_seconds": 2,
                "rules": [{"run_name": "*-flaky-*", "result": "FAILED", "running_seconds": 5}],
            },
            "limits": {"max_active_runs": 200},
        }
    )


# The demo's webhook secret: made fresh per run of the demo, never written anywhere.
def demo_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_settings(receiver_url: str, secret: str) -> dict[str, Any]:
    """team-a's runs are delivered to the demo receiver on loopback (allowed for the demo)."""
    prefix = receiver_url.rsplit("/", 1)[0] + "/"
    return {
        "gateway": {"allow_http": True, "allow_networks": ["127.0.0.0/8"]},
        "team-a": {"url": receiver_url, "allowed_url_prefixes": [prefix], "secret_value": secret},
    }


def gateway_settings(
    creds: DemoCredentials,
    *,
    workspace_url: str,
    port: int,
    data_dir: Path,
    webhooks: dict[str, Any] | None = None,
    store: dict[str, Any] | None = None,
) -> Settings:
    namespaces: dict[str, Any] = {
        ns: {"identity": creds.identities[ns], **DEMO_POLICY.get(ns, {})} for ns in DEMO_NAMESPACES
    }
    if webhooks is not None:
        namespaces["team-a"] = {**namespaces["team-a"], "webhooks": webhooks["team-a"]}
    return Settings.model_validate(
        {
            **({"webhooks": webhooks["gateway"]} if webhooks is not None else {}),
            "server": {"host": "127.0.0.1", "port": port},
            "store": store or {"backend": "sqlite", "sqlite_path": str(data_dir / "demo.db")},
            "workspaces": {"demo": {"host": workspace_url}},
            "poller": {"min_interval_seconds": 1, "max_interval_seconds": 5},
            # Demo only: no credential needed, every namespace open to every caller.
            "callers": {"methods": ["none"]},
            "tenants": {
                "defaults": {"workspace": "demo"},
                "namespaces": namespaces,
            },
        }
    )


SAMPLE_SPEC = {
    "spec": {
        "run_name": "demo-etl",
        "tasks": [
            {
                "task_key": "main",
                "notebook_task": {"notebook_path": "/Shared/etl"},
                "existing_cluster_id": "0101-000000-demo",
            }
        ],
    },
    "labels": {"team": "a"},
}


def _command() -> str:
    """How to run lakegate from this shell: `make demo` installs it in .venv, not on PATH."""
    beside = Path(sys.executable).with_name("lakegate")
    if beside.exists() and shutil.which("lakegate") != str(beside):
        return os.path.relpath(beside) if beside.is_relative_to(Path.cwd()) else str(beside)
    return "lakegate"


def banner(url: str, workspace_url: str, cli: str = "lakegate") -> str:
    body = json.dumps(SAMPLE_SPEC)
    return "\n".join(
        [
            f"lakegate {__version__} demo",
            f"  gateway:             {url}   (API: {url}/openapi.json)",
            f"  emulated workspace:  {workspace_url}",
            f"  namespaces:          {', '.join(DEMO_NAMESPACES)}"
            " (team-a, team-c: OAuth M2M; team-b: PAT)",
            "",
            "Submit a run:",
            f"  curl -s -X POST {url}/v1/namespaces/team-a/runs "
            f"-H 'Content-Type: application/json' -d '{body}'",
            "Follow it:",
            f"  {cli} get --url {url} -n team-a <id>    or    {cli} runs --url {url} -n team-a",
            "See queueing (team-c runs at most 2 at once, queues 10):",
            f"  {cli} quota --url {url} -n team-c",
            "AUTHENTICATION DISABLED: any caller may act for any namespace (demo only).",
            "Ctrl-C stops the demo.",
        ]
    )


async def run_demo(
    *, port: int, emulator_port: int, data_dir: Path, store: dict[str, Any] | None = None
) -> None:
    """Serve until interrupted; ``store`` replaces the SQLite ledger (a ``store`` section)."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    creds = make_credentials()
    secret = demo_webhook_secret()
    receiver = DemoReceiver(parse_secrets(secret), out=lambda line: print(line, flush=True))
    async with EmulatorServer(emulator_config(creds), port=emulator_port) as emulator:
        hook_url = await receiver.start()
        settings = gateway_settings(
            creds, workspace_url=emulator.url, port=port, data_dir=data_dir,
            webhooks=webhook_settings(hook_url, secret), store=store,
        )  # fmt: skip
        # Served as `lakegate serve` serves: a request aiohttp cannot parse is never echoed.
        runner = GatewayRunner(create_app(settings), access_log=None)
        await runner.setup()
        try:
            bound = await start_site(runner, Listener(runner.app, settings.server.host, port))
            cli = await asyncio.to_thread(_command)  # looks at the file system
            print(banner(f"http://127.0.0.1:{bound}", emulator.url, cli), flush=True)
            print(f"Webhooks: team-a's run events go to {hook_url}; each prints here.", flush=True)
            await _wait_for_stop()
        finally:
            await runner.cleanup()
            await receiver.stop()


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
