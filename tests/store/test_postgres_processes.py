"""The README's PostgreSQL examples as processes: `lakegate demo --store postgres` and two
`lakegate serve` replicas sharing one ledger."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml

from tests.e2e.processes import ProcessGroup, free_port, lakegate_command
from tests.e2e.specs import spec
from tests.fixtures.gateway import namespace_name, stack_configs

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

URL_LINE = re.compile(r"gateway:\s+(http://127\.0\.0\.1:\d+)")


async def _until_succeeded(http: aiohttp.ClientSession, url: str) -> None:
    async with asyncio.timeout(45):
        state = ""
        while state != "SUCCEEDED":
            async with http.get(url) as resp:
                state = (await resp.json())["state"]
            assert state not in ("FAILED", "REJECTED", "INTERNAL_ERROR"), state
            await asyncio.sleep(0.3)


async def _ledger_ids(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        return [row["id"] for row in await conn.fetch("SELECT id FROM runs ORDER BY id")]
    finally:
        await conn.close()


async def test_the_demo_keeps_its_ledger_in_postgresql(tmp_path: Path, pg_dsn: str) -> None:
    """`lakegate demo --store postgres --dsn ...` serves a run to its end from PostgreSQL."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "gateway", "demo", "--port", "0"),
        *("--data-dir", str(tmp_path / "demo"), "--store", "postgres", "--dsn", pg_dsn),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    try:
        url = None
        async with asyncio.timeout(30):
            while url is None:
                line = (await process.stdout.readline()).decode()
                assert line, "the demo exited before printing its URL"
                found = URL_LINE.search(line)
                url = found.group(1) if found else None
        async with aiohttp.ClientSession(url) as http:
            body = {"spec": spec("demo-on-postgres", seconds=1.0)}
            async with http.post("/v1/namespaces/team-b/runs", json=body) as resp:
                assert resp.status in (201, 202), await resp.text()
                run_id = (await resp.json())["id"]
            await _until_succeeded(http, f"/v1/namespaces/team-b/runs/{run_id}")
        assert await _ledger_ids(pg_dsn) == [run_id]
        assert not (tmp_path / "demo" / "demo.db").exists()
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


async def test_two_replicas_serve_one_ledger(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's ha example: two `lakegate serve` on one DSN (from an environment variable)
    answer for the same runs, and an Idempotency-Key replayed on the other replica is the same
    run."""
    monkeypatch.setenv("PG_LEDGER_DSN", pg_dsn)
    emulator_raw, gateway_raw, _ = stack_configs(1, tmp_path=tmp_path)
    emulator_port = free_port()
    ports = [free_port(besides={emulator_port}) for _ in range(2)]
    gateway_raw["store"] = {"backend": "postgres", "dsn_env": "PG_LEDGER_DSN"}
    gateway_raw["workspaces"] = {"emulated": {"host": f"http://127.0.0.1:{emulator_port}"}}
    group = ProcessGroup(tmp_path)
    emulator = group.add(
        "emulator",
        lakegate_command(
            "emulator",
            "databricks",
            "--config",
            str(_write(tmp_path / "emu.yaml", emulator_raw)),
            "--port",
            str(emulator_port),
        ),
        probe_url=f"http://127.0.0.1:{emulator_port}/emulator/runs",
        ready_when=lambda status: status < 500,
    )
    replicas = []
    for index, port in enumerate(ports):
        config = {**gateway_raw, "server": {"host": "127.0.0.1", "port": port}}
        path = _write(tmp_path / f"gateway-{index}.yaml", config)
        replicas.append(
            group.add(
                f"gateway-{index}",
                lakegate_command("serve", "--config", str(path)),
                probe_url=f"http://127.0.0.1:{port}/readyz",
            )
        )
    ns = namespace_name(0)
    async with aiohttp.ClientSession() as http:
        try:
            await emulator.start(http)
            await asyncio.gather(*(replica.start(http) for replica in replicas))
            first, second = (f"http://127.0.0.1:{port}/v1/namespaces/{ns}/runs" for port in ports)
            body, key = {"spec": spec("shared", seconds=1.0)}, {"Idempotency-Key": "one"}
            async with http.post(first, json=body, headers=key) as resp:
                assert resp.status in (201, 202), await resp.text()
                run_id = (await resp.json())["id"]
            async with http.post(second, json=body, headers=key) as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["id"] == run_id
            await _until_succeeded(http, f"{second}/{run_id}")
            assert await _ledger_ids(pg_dsn) == [run_id]
        finally:
            await group.aclose()
