"""The emulator and lakegate in-process on real loopback sockets, each on HTTP and HTTPS.

A real client is pointed at one ``Target`` at a time: ``emulator`` (the Databricks emulator
itself, with a PAT of a user of its own) or ``lakegate`` (the gateway's Databricks-compatible
facade, with an API key bound to namespace ``team-00``, whose runs go to the emulator as that
namespace's own PAT user). A second key (``ClientStack.shared_key``) is a scheduler's shared
credential, granted ``team-00`` and ``team-01`` (an OAuth service principal of its own) with
``team-01`` its default; lakegate reads the namespace from the Host under ``HOST_PATTERN``, so
an unchanged client chooses by the host it is given (``host_of``). Both apps are served twice,
on plain HTTP and on HTTPS with the test CA (``tls.TestTls``), because some clients only
build ``https://`` URLs, and, where the process may bind it, on port 80 of a loopback
address, because the legacy CLI drops the port.
The gateway itself talks to the emulator over plain HTTP.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.app import Overrides, create_app
from gateway.callers.api_keys import sha256_hex
from gateway.emulator.databricks import EmulatorConfig
from gateway.emulator.databricks.server import WORKSPACE
from gateway.emulator.databricks.server import create_app as create_emulator_app
from gateway.settings import Settings
from tests.clients.tls import TestTls
from tests.fixtures.gateway import namespace_name, stack_configs

LOOPBACK = "127.0.0.1"
NAMESPACE = namespace_name(0)
SHARED_NAMESPACES = (namespace_name(0), namespace_name(1))
SHARED_DEFAULT = namespace_name(1)
HOST_PATTERN = "{namespace}.lakegate.example"
DIRECT_USER = "clients-direct@example.com"
# Long enough that a client can cancel a run it just submitted, short enough to wait for one.
# Runs named "*-cancel" run for minutes, so a client's cancel always finds them running.
CANCEL_SUFFIX = "-cancel"
LIFECYCLE = {
    "pending_seconds": 0.5,
    "running_seconds": 1.5,
    "terminating_seconds": 0.3,
    "rules": [{"run_name": f"*{CANCEL_SUFFIX}", "running_seconds": 300}],
}


@dataclass(frozen=True)
class Target:
    """Where a client is pointed, and the token it presents there."""

    name: str
    url: str
    tls_url: str
    token: str
    port80_url: str | None  # None where port 80 could not be bound (not root)

    @property
    def tls_instance(self) -> str:
        """``host:port`` of the HTTPS site: the "instance" that https-only clients take."""
        return self.tls_url.removeprefix("https://")

    def args(self) -> dict[str, Any]:
        return {
            "target": self.name,
            "url": self.url,
            "tls_url": self.tls_url,
            "instance": self.tls_instance,
            "token": self.token,
            "port80_url": self.port80_url,
        }


@dataclass
class ClientStack:
    emulator_app: web.Application
    targets: dict[str, Target]
    tls: TestTls
    shared_key: str
    principals: dict[str, str]

    @staticmethod
    def host_of(namespace: str) -> str:
        """The host name that names ``namespace`` to lakegate (no DNS: see the proxy the
        tests give clients)."""
        return HOST_PATTERN.replace("{namespace}", namespace)

    def remote_runs(self, run_name: str) -> list[dict[str, Any]]:
        """The emulator's runs named ``run_name``: what reached Databricks."""
        runs = self.emulator_app[WORKSPACE].run_summaries()
        return [run for run in runs if run["run_name"] == run_name]


async def _site(runner: web.AppRunner, host: str, port: int, **kwargs: Any) -> int:
    site = web.TCPSite(runner, host, port, **kwargs)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    return int(server.sockets[0].getsockname()[1])


async def _port_80(runner: web.AppRunner) -> str | None:
    """``http://127.x.y.z`` on port 80, for clients that drop the port; None if not allowed.

    A random address of the loopback range, so that two test runs on one machine do not
    compete for one address's port 80.
    """
    for _ in range(5):
        host = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        try:
            await _site(runner, host, 80)
        except OSError:
            continue
        return f"http://{host}"
    return None


async def _serve(
    exits: AsyncExitStack, app: web.Application, context: ssl.SSLContext
) -> tuple[str, str, str | None]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    exits.push_async_callback(runner.cleanup)
    plain = await _site(runner, LOOPBACK, 0)
    tls = await _site(runner, LOOPBACK, 0, ssl_context=context)
    return f"http://{LOOPBACK}:{plain}", f"https://{LOOPBACK}:{tls}", await _port_80(runner)


def _configs(
    tmp_path: Path, api_key: str, shared_key: str, direct_pat: str
) -> tuple[dict[str, Any], Any, dict[str, str]]:
    shared = {
        "name": "shared-scheduler",
        "sha256": sha256_hex(shared_key),
        "namespaces": list(SHARED_NAMESPACES),
        "default_namespace": SHARED_DEFAULT,
    }
    callers = {
        "methods": ["api_key"],
        "namespace_host_pattern": HOST_PATTERN,
        "api_keys": [
            {"name": "scheduler", "sha256": sha256_hex(api_key), "namespaces": [NAMESPACE]},
            shared,
        ],
    }
    emulator_raw, gateway_raw, principals = stack_configs(
        2, tmp_path=tmp_path, emulator={"lifecycle": LIFECYCLE}, gateway={"callers": callers}
    )
    emulator_raw["identity"]["users"].append({"name": DIRECT_USER, "pats": [direct_pat]})
    return emulator_raw, gateway_raw, principals


@asynccontextmanager
async def client_stack(tmp_path: Path) -> AsyncIterator[ClientStack]:
    """Start the emulator and the gateway; stop both on exit."""
    tls = TestTls.issue(tmp_path)
    api_key, direct_pat = "lgk_" + secrets.token_urlsafe(24), "dapi" + secrets.token_hex(16)
    shared_key = "lgk_" + secrets.token_urlsafe(24)
    emulator_raw, gateway_raw, principals = _configs(tmp_path, api_key, shared_key, direct_pat)
    async with AsyncExitStack() as exits:
        emulator_app = create_emulator_app(EmulatorConfig.model_validate(emulator_raw))
        emulator_urls = await _serve(exits, emulator_app, tls.server_context)
        emulator_url = emulator_urls[0]
        gateway_raw["workspaces"] = {"emulated": {"host": emulator_url}}
        overrides = Overrides(environ={}, poll_idle_seconds=0.05, inline_submit_seconds=5)
        gateway_app = create_app(Settings.model_validate(gateway_raw), overrides)
        gateway_urls = await _serve(exits, gateway_app, tls.server_context)
        targets = {
            "emulator": Target("emulator", *emulator_urls[:2], direct_pat, emulator_urls[2]),
            "lakegate": Target("lakegate", *gateway_urls[:2], api_key, gateway_urls[2]),
        }
        yield ClientStack(
            emulator_app=emulator_app,
            targets=targets,
            tls=tls,
            shared_key=shared_key,
            principals=principals,
        )
