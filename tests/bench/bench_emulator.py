"""Throughput and latency of the Databricks emulator's runs/submit and runs/get.

    .venv/bin/python tests/bench/bench_emulator.py [--workers 32] [--requests 20000] [--seconds 8]

The emulator runs in its own process (so it does not share a core with the load), listening
on a loopback port; one aiohttp load generator with N concurrent workers sends runs/submit
until it has sent ``--requests`` or ``--seconds`` have passed, then the same for runs/get of
the runs it created. Prints requests per second and latency percentiles per endpoint, and
exits non-zero if any request failed. ``--in-process`` serves from the load generator's
own event loop instead, to see what sharing one core costs.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
from multiprocessing.connection import Connection

import aiohttp
from _stack import Phase, run_phase  # the load generator every benchmark shares

from gateway import logs
from gateway.emulator.databricks import EmulatorConfig, EmulatorServer

PAT = "dapi0000000000000000000000000000bench"
SPEC = {
    "run_name": "bench",
    "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/Shared/bench"}}],
}


def bench_config() -> EmulatorConfig:
    # Limits far above the load, and runs long enough to all stay active: the active set
    # grows to every submitted run, the registry's worst case.
    return EmulatorConfig.model_validate(
        {
            "identity": {"users": [{"name": "bench@example.com", "pats": [PAT]}]},
            "limits": {"max_active_runs": 1_000_000, "max_queued_runs": 0},
            "lifecycle": {"running_seconds": 3600},
        }
    )


async def _serve_until_told(conn: Connection) -> None:
    async with EmulatorServer(bench_config()) as server:
        conn.send(server.port)
        loop = asyncio.get_running_loop()
        # The parent says when to stop; waiting for it must not block the loop.
        await loop.run_in_executor(None, conn.recv)


def serve_in_child(conn: Connection) -> None:
    logs.configure(level="warning", fmt="console")
    asyncio.run(_serve_until_told(conn))


async def drive(url: str, args: argparse.Namespace) -> list[Phase]:
    headers = {"Authorization": f"Bearer {PAT}"}
    connector = aiohttp.TCPConnector(limit=args.workers)
    run_ids: list[int] = []
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as http:

        async def submit(_i: int) -> None:
            async with http.post("/api/2.2/jobs/runs/submit", json=SPEC) as resp:
                body = await resp.json()
                assert resp.status == 200, f"submit {resp.status}"
                run_ids.append(body["run_id"])

        async def get(i: int) -> None:
            run_id = run_ids[i % len(run_ids)]
            async with http.get("/api/2.2/jobs/runs/get", params={"run_id": run_id}) as resp:
                await resp.read()
                assert resp.status == 200, f"get {resp.status}"

        # A short warm-up so connection set-up is not in the figures.
        await run_phase("warm-up", args.workers, args.workers * 4, args.seconds, submit)
        submits = await run_phase("runs/submit", args.workers, args.requests, args.seconds, submit)
        gets = await run_phase("runs/get", args.workers, args.requests, args.seconds, get)
    return [submits, gets]


async def bench_in_process(args: argparse.Namespace) -> list[Phase]:
    async with EmulatorServer(bench_config()) as server:
        return await drive(server.url, args)


def bench_out_of_process(args: argparse.Namespace) -> list[Phase]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=serve_in_child, args=(child,), daemon=True)
    process.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("the emulator process did not start within 30 s")
        port = parent.recv()
        return asyncio.run(drive(f"http://127.0.0.1:{port}", args))
    finally:
        parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.terminate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20_000, help="per endpoint")
    parser.add_argument("--seconds", type=float, default=8.0, help="cap per endpoint")
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args()
    logs.configure(level="warning", fmt="console")
    where = "same process" if args.in_process else "separate process"
    print(
        f"emulator bench: {args.workers} workers, up to {args.requests} requests or "
        f"{args.seconds:g} s per endpoint, emulator in a {where}, {os.cpu_count()} CPUs"
    )
    phases = asyncio.run(bench_in_process(args)) if args.in_process else bench_out_of_process(args)
    for phase in phases:
        print(phase.report())
        for error, count in sorted(phase.errors.items()):
            print(f"{'':<12} {count} x {error}")
    return 1 if any(p.errors or not p.latencies for p in phases) else 0


if __name__ == "__main__":
    sys.exit(main())
