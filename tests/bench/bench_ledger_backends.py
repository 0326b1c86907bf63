"""Submit and get throughput on SQLite (1 replica) and PostgreSQL (1 and 3 replicas).

    LAKEGATE_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python tests/bench/bench_ledger_backends.py [--submits 1500] [--gets 3000]
        [--workers 32] [--namespaces 20]

For each set-up, one emulator and the gateway processes (``lakegate serve``) start fresh; a
PostgreSQL set-up gets a schema of its own, dropped afterwards. ``--submits`` POSTs go
round-robin to the replicas across ``--namespaces`` namespaces, then ``--gets`` GETs of those
runs, ``--workers`` at a time from one client process. Runs stay PENDING (a long emulated
life cycle) and the poller's interval is long, so what is measured is the API and its ledger.
Printed: requests per second and latency per phase, and each set-up's throughput as a ratio
of SQLite's. Everything talks to 127.0.0.1 only; on this 2-core machine the client, the
emulator, the replicas and PostgreSQL share the cores, so three replicas measure contention
as much as capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml
from _stack import (
    LOOPBACK,
    ROOT,
    CpuWatch,
    Phase,
    _stop,
    _wait_ready,
    free_port,
    run_phase,
    spec,
)

from tests.fixtures.gateway import namespace_name, stack_configs
from tests.store.pg import with_schema

LIFECYCLE = {"pending_seconds": 3_600, "running_seconds": 3_600}
POLLER = {"min_interval_seconds": 300, "max_interval_seconds": 600}
SETUPS = (("sqlite", 1), ("postgres", 1), ("postgres", 3))


@contextlib.contextmanager
def _processes(
    workdir: Path, store: dict[str, Any], replicas: int, namespaces: int
) -> Iterator[tuple[list[str], list[int]]]:
    emulator_raw, gateway_raw, _ = stack_configs(
        namespaces, tmp_path=workdir, emulator={"lifecycle": LIFECYCLE}
    )
    emulator_raw["limits"] = {"max_active_runs": 1_000_000}
    emulator_port = free_port()
    gateway_raw.pop("databricks", None)
    gateway_raw.update(poller=POLLER, store=store, logging={"level": "warning", "format": "json"})
    gateway_raw["workspaces"] = {"emulated": {"host": f"http://{LOOPBACK}:{emulator_port}"}}
    with contextlib.ExitStack() as stack:

        def start(name: str, config: dict[str, Any], args: list[str]) -> subprocess.Popen[bytes]:
            path = workdir / f"{name}.yaml"
            path.write_text(yaml.safe_dump(config), encoding="utf-8")
            log = stack.enter_context((workdir / f"{name}.log").open("wb"))
            process = subprocess.Popen(
                [sys.executable, "-m", "gateway", *args, "--config", str(path)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
            )  # fmt: skip
            stack.callback(_stop, process)
            return process

        emulator = start(
            "emulator", emulator_raw,
            ["emulator", "databricks", "--port", str(emulator_port), "--log-level", "warning"],
        )  # fmt: skip
        _wait_ready(f"http://{LOOPBACK}:{emulator_port}/emulator/stats", emulator,
                    workdir / "emulator.log")  # fmt: skip
        urls, gateways = [], []
        for index in range(replicas):
            port = free_port()
            config = {**gateway_raw, "server": {"host": LOOPBACK, "port": port}}
            gateways.append(start(f"gateway-{index}", config, ["serve"]))
            urls.append(f"http://{LOOPBACK}:{port}")
        for index, (url, gateway) in enumerate(zip(urls, gateways, strict=True)):
            _wait_ready(f"{url}/readyz", gateway, workdir / f"gateway-{index}.log")
        yield urls, [emulator.pid, *(gateway.pid for gateway in gateways)]


async def _load(urls: list[str], args: argparse.Namespace) -> tuple[Phase, Phase]:
    names = [namespace_name(i) for i in range(args.namespaces)]
    created: list[tuple[str, str, int]] = []
    connector = aiohttp.TCPConnector(limit=args.workers * 2)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def submit(i: int) -> None:
            url, ns = urls[i % len(urls)], names[i % len(names)]
            async with http.post(
                f"{url}/v1/namespaces/{ns}/runs", json={"spec": spec(f"b{i}")}
            ) as r:
                assert r.status in (201, 202), r.status
                created.append((url, ns, (await r.json())["id"]))

        async def get(i: int) -> None:
            _, ns, run_id = created[i % len(created)]
            url = urls[i % len(urls)]
            async with http.get(f"{url}/v1/namespaces/{ns}/runs/{run_id}") as r:
                assert r.status == 200, r.status
                await r.read()

        submits = await run_phase("submit", args.workers, args.submits, 120, submit)
        gets = await run_phase("get", args.workers, args.gets, 120, get)
    return submits, gets


async def _schema(dsn: str, *, drop: str | None = None) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        if drop is not None:
            await conn.execute(f'DROP SCHEMA "{drop}" CASCADE')
            return drop
        name = f"lgbench_{uuid.uuid4().hex[:12]}"
        await conn.execute(f'CREATE SCHEMA "{name}"')
        return name
    finally:
        await conn.close()


def _one(backend: str, replicas: int, args: argparse.Namespace) -> tuple[Phase, Phase]:
    with tempfile.TemporaryDirectory(prefix="lakegate-bench-") as tmp:
        workdir = Path(tmp)
        schema = None
        if backend == "sqlite":
            store: dict[str, Any] = {"sqlite_path": str(workdir / "ledger.db")}
        else:
            schema = asyncio.run(_schema(args.dsn))
            store = {"backend": "postgres", "dsn": with_schema(args.dsn, schema)}
        try:
            with _processes(workdir, store, replicas, args.namespaces) as (urls, pids):
                watch = CpuWatch(tuple(pids))
                submits, gets = asyncio.run(_load(urls, args))
                print(f"-- {backend} x{replicas}: {watch.report()}")
        finally:
            if schema is not None:
                asyncio.run(_schema(args.dsn, drop=schema))
    for phase in (submits, gets):
        phase.name = f"{backend} x{replicas} {phase.name}"
        print(phase.report())
    return submits, gets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submits", type=int, default=1500)
    parser.add_argument("--gets", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--dsn", default=os.environ.get("LAKEGATE_TEST_POSTGRES_DSN"))
    args = parser.parse_args()
    if not args.dsn:
        # `make bench` runs every script: without a server this one says why it did nothing.
        print("skipped: set LAKEGATE_TEST_POSTGRES_DSN (or --dsn) to a PostgreSQL server")
        return 0
    results = {(b, n): _one(b, n, args) for b, n in SETUPS}
    base_submit, base_get = (p.throughput for p in results[("sqlite", 1)])
    print("\nthroughput as a ratio of SQLite x1 (submit, get):")
    for (backend, replicas), (submits, gets) in results.items():
        print(
            f"  {backend} x{replicas}: submit {submits.throughput / base_submit:.2f}"
            f"   get {gets.throughput / base_get:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
