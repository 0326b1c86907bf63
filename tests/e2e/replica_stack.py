"""Several ``lakegate serve`` processes on one PostgreSQL schema and one Databricks emulator.

For the replica proof (``test_replicas``) and its benchmark (``tests/bench/bench_replicas``):
``replica_stack`` starts the emulator and N gateway processes, each with its own port and
``server.replica_id``, on a schema made for the run and dropped after; ``Watch`` samples the
emulator's active runs per namespace while a test works; ``claim_overlaps`` reads the
replicas' ``claims_held`` log events and finds any run two replicas held at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from gateway.cli.client import LakegateClient, Submitted
from gateway.cli.errors import GatewayClientError
from gateway.cli.retry import ClientRetry
from tests.e2e.processes import ManagedProcess, ProcessGroup, free_port, lakegate_command
from tests.fixtures.gateway import stack_configs
from tests.store.pg import fresh_schema

# Each call tried once: ``submit_via`` moves on to another replica instead.
ONE_TRY = ClientRetry(attempts=1)
# Runs end about 1.5 s after Databricks takes them.
LIFECYCLE = {"pending_seconds": 0.2, "running_seconds": 1.0, "terminating_seconds": 0.2}
ACTIVE = frozenset({"QUEUED", "PENDING", "RUNNING", "TERMINATING", "BLOCKED"})
WEBHOOKS = {
    "allow_http": True,
    "allow_networks": ["127.0.0.0/8"],
    "retry_schedule_seconds": [0, 0.3, 0.5, 1, 1, 2, 2, 2, 2, 2],
    # A killed replica's outbox rows wait this long for another replica.
    "lease_seconds": 5,
    "poll_interval_seconds": 0.05,
}


@dataclass
class ReplicaStack:
    session: aiohttp.ClientSession
    emulator: ManagedProcess
    replicas: list[ManagedProcess]
    urls: list[str]
    emulator_url: str
    dsn: str
    principals: dict[str, str]

    def client(self, index: int, **kwargs: Any) -> LakegateClient:
        return LakegateClient(self.urls[index], session=self.session, **kwargs)

    async def emulator_runs(self) -> list[dict[str, Any]]:
        async with self.session.get(f"{self.emulator_url}/emulator/runs") as response:
            response.raise_for_status()
            runs: list[dict[str, Any]] = (await response.json())["runs"]
            return runs

    def log_paths(self) -> list[Path]:
        return [replica.log_path for replica in self.replicas]

    async def submit_via(
        self, first: int, namespace: str, job: dict[str, Any], key: str, *, within: float = 90
    ) -> Submitted:
        """Submit as a scheduler behind a Service would: to replica ``first``, and while that
        one is down or answers 5xx/429, to the next, with the same Idempotency-Key."""
        deadline = time.monotonic() + within
        index = first
        while True:
            client = self.client(index, timeout=30.0, retry=ONE_TRY)
            try:
                return await client.submit(namespace, job, idempotency_key=key)
            except GatewayClientError as exc:
                if not exc.transient or time.monotonic() > deadline:
                    raise
            index = (index + 1) % len(self.urls)
            await asyncio.sleep(0.05)


def _write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def replica_stack(
    tmp_path: Path,
    *,
    replicas: int,
    namespaces: int,
    quotas: dict[str, Any],
    webhook_url: str | None = None,
    webhook_secret: str = "",
    log_level: str = "debug",
    lifecycle: dict[str, Any] | None = None,
    poller: dict[str, Any] | None = None,
) -> AsyncIterator[ReplicaStack]:
    """The emulator and ``replicas`` gateways on a fresh schema; all killed on the way out.

    ``lifecycle`` replaces the emulator's run life cycle (default ``LIFECYCLE``), ``poller``
    the gateways' poller settings (default: the test stack's fast poller).
    """
    group = ProcessGroup(tmp_path)
    async with fresh_schema() as dsn, aiohttp.ClientSession() as session:
        try:
            raw = _configs(tmp_path, namespaces, quotas, lifecycle, poller)
            yield await _start(group, session, tmp_path, dsn, replicas, raw,
                               webhook_url, webhook_secret, log_level)  # fmt: skip
        finally:
            await group.aclose()


def _configs(
    tmp_path: Path,
    namespaces: int,
    quotas: dict[str, Any],
    lifecycle: dict[str, Any] | None,
    poller: dict[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    emulator_raw, gateway_raw, principals = stack_configs(
        namespaces, tmp_path=tmp_path, emulator={"lifecycle": lifecycle or LIFECYCLE},
        quotas=quotas,
    )  # fmt: skip
    if poller is not None:
        gateway_raw["poller"] = poller
    return emulator_raw, gateway_raw, principals


async def _start(
    group: ProcessGroup,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    dsn: str,
    count: int,
    raw: tuple[dict[str, Any], dict[str, Any], dict[str, str]],
    webhook_url: str | None,
    webhook_secret: str,
    log_level: str,
) -> ReplicaStack:
    emulator_raw, gateway_raw, principals = raw
    emulator_port = free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    emulator = group.add(
        "emulator",
        lakegate_command(
            *(
                "emulator",
                "databricks",
                "--config",
                str(_write_yaml(tmp_path / "emu.yaml", emulator_raw)),
            ),
            *("--port", str(emulator_port), "--log-level", "warning"),
        ),
        probe_url=f"{emulator_url}/emulator/runs",
        ready_when=lambda status: status < 500,
    )
    gateway_raw["store"] = {"backend": "postgres", "dsn": dsn, "pool_max_size": 6}
    gateway_raw["logging"] = {"level": log_level, "format": "json"}
    gateway_raw["workspaces"] = {"emulated": {"host": emulator_url}}
    if webhook_url is not None:
        gateway_raw["webhooks"] = WEBHOOKS
        gateway_raw["tenants"]["defaults"]["webhooks"] = {
            "url": webhook_url, "secret_value": webhook_secret,
        }  # fmt: skip
    ports: list[int] = []
    started: list[ManagedProcess] = []
    for index in range(count):
        port = free_port(besides={emulator_port, *ports})
        ports.append(port)
        raw = {**gateway_raw, "server": {"host": "127.0.0.1", "port": port,
                                         "replica_id": f"replica-{index}"}}  # fmt: skip
        path = _write_yaml(tmp_path / f"gateway-{index}.yaml", raw)
        started.append(
            group.add(
                f"replica-{index}",
                lakegate_command("serve", "--config", str(path)),
                probe_url=f"http://127.0.0.1:{port}/readyz",
            )
        )
    await emulator.start(session)
    # Together: replicas starting at once must migrate the fresh schema once between them.
    await asyncio.gather(*(replica.start(session, within=60) for replica in started))
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    return ReplicaStack(session, emulator, started, urls, emulator_url, dsn, principals)


@dataclass
class Watch:
    """Samples the emulator's active runs per principal until stopped; keeps the highest."""

    stack: ReplicaStack
    interval: float = 0.3
    highest: Counter[str] = field(default_factory=Counter)
    samples: int = 0

    async def run(self) -> None:
        while True:
            active: Counter[str] = Counter()
            with contextlib.suppress(aiohttp.ClientError):
                for run in await self.stack.emulator_runs():
                    if run["life_cycle_state"] in ACTIVE:
                        active[run["principal"]] += 1
                self.samples += 1
            for principal, n in active.items():
                self.highest[principal] = max(self.highest[principal], n)
            await asyncio.sleep(self.interval)


def claim_spans(paths: list[Path]) -> dict[int, list[tuple[float, float, str]]]:
    """Every (began, ended, owner) span a replica logged holding each run."""
    spans: dict[int, list[tuple[float, float, str]]] = defaultdict(list)
    for path in paths:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if '"claims_held"' not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue  # the last line of a SIGKILLed process may be cut short
            for run_id in event["run_ids"]:
                spans[run_id].append((event["began"], event["ended"], event["owner"]))
    return spans


def claim_overlaps(paths: list[Path]) -> list[tuple[int, str, str, float]]:
    """Runs held by two replicas at once: (run id, owner, other owner, seconds of overlap)."""
    found = []
    for run_id, spans in claim_spans(paths).items():
        spans.sort()
        for i, (_began, ended, owner) in enumerate(spans):
            for other_began, _other_ended, other in spans[i + 1 :]:
                if other_began >= ended:
                    break
                if other != owner:
                    found.append((run_id, owner, other, ended - other_began))
    return found
