"""The gateway beside the least a submit can cost on this machine, in one run.

    .venv/bin/python tests/bench/bench_floor.py [--workers 32] [--requests 3000]
        [--namespaces 8] [--event-loop asyncio|uvloop]

Issue 16 sets targets in µs of CPU per request and puts the floor of an accepted submit (one
inbound request, one outbound request, a durable write) at about 600 µs on the machine it was
measured on. Machines differ; this measures that floor here, beside the gateway, so that the
gateway's figure can be read as "the floor plus lakegate's own work".

It starts the stack of ``bench_gateway.py`` (emulator and gateway, the poller idle) and
``_floor.py``, a bare pass-through with the same kind of ledger (SQLite WAL, synchronous=FULL,
one thread, group commit) and the same HTTP library, and drives the emulator straight, the
floor and the gateway with the same load generator: submits, then GETs of the runs each made.
Printed per phase: throughput, latency, and the CPU per request of the process served (user +
system from /proc) and of the emulator behind it; then what the gateway spends above the
floor, per submit and per GET.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from _stack import (
    DIRECT_PAT,
    LOOPBACK,
    Phase,
    Stack,
    _stop,
    _wait_ready,
    cpu_seconds,
    free_port,
    run_phase,
    running_stack,
    spec,
)
from bench_gateway import API, LONG_LIFECYCLE, QUIET_POLLER

FLOOR = Path(__file__).with_name("_floor.py")
Call = Callable[[int], Awaitable[None]]


@dataclass
class Served:
    """One phase's load and the CPU it cost the process served and the emulator."""

    phase: Phase
    cpu: float
    emulator_cpu: float

    def per_request(self, seconds: float) -> float:
        return seconds / max(len(self.phase.latencies), 1) * 1e6


@dataclass
class Results:
    phases: dict[str, Served] = field(default_factory=dict)


async def drive(stack: Stack, floor_url: str, floor_pid: int, args: argparse.Namespace) -> Results:
    results = Results()
    emu, gw = stack.emulator_url, stack.gateway_url
    direct = {"Authorization": f"Bearer {DIRECT_PAT}"}
    made: dict[str, list[str]] = {"emulator": [], "floor": [], "gateway": []}
    connector = aiohttp.TCPConnector(limit=args.workers * 2)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def post(url: str, body: object, headers: dict[str, str], ok: int) -> Any:
            async with http.post(url, json=body, headers=headers) as resp:
                data = await resp.json()
                assert resp.status == ok, f"{url} {resp.status}"
                return data

        async def emulator_submit(_i: int) -> None:
            body = {**spec("bench-direct"), "idempotency_token": uuid.uuid4().hex}
            data = await post(f"{emu}{API}/submit", body, direct, 200)
            made["emulator"].append(f"{emu}{API}/get?run_id={data['run_id']}")

        async def floor_submit(_i: int) -> None:
            body = {"spec": spec("bench-floor")}
            data = await post(f"{floor_url}/runs", body, {"Idempotency-Key": uuid.uuid4().hex}, 201)
            made["floor"].append(f"{floor_url}/runs/{data['id']}")

        async def gateway_submit(i: int) -> None:
            ns = stack.namespaces[i % len(stack.namespaces)]
            url = f"{gw}/v1/namespaces/{ns}/runs"
            body = {"spec": spec("bench-gateway")}
            data = await post(url, body, {"Idempotency-Key": uuid.uuid4().hex}, 201)
            made["gateway"].append(f"{url}/{data['id']}")

        def getter(who: str, headers: dict[str, str]) -> Call:
            async def get(i: int) -> None:
                urls = made[who]
                async with http.get(urls[i % len(urls)], headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200, f"get {resp.status}"

            return get

        submits: dict[str, Call] = {
            "emulator": emulator_submit,
            "floor": floor_submit,
            "gateway": gateway_submit,
        }
        for who, call in submits.items():  # connections, tokens and code paths warmed first
            await run_phase(f"warm-up {who}", args.workers, args.workers * 4, args.seconds, call)
        pids = {"emulator": stack.emulator_pid, "floor": floor_pid, "gateway": stack.gateway_pid}
        plan: list[tuple[str, str, Call]] = [
            (f"{who} submit", who, c) for who, c in submits.items()
        ]
        plan += [(f"{who} get", who, getter(who, direct)) for who in submits]
        for name, who, call in plan:
            before = cpu_seconds(pids[who]), cpu_seconds(stack.emulator_pid)
            phase = await run_phase(name, args.workers, args.requests, args.seconds, call)
            served = cpu_seconds(pids[who]) - before[0]
            emulator = cpu_seconds(stack.emulator_pid) - before[1]
            results.phases[name] = Served(phase, served, 0.0 if who == "emulator" else emulator)
    return results


def report(results: Results) -> None:
    print("  phase                  process served / emulator behind it, CPU per request")
    for served in results.phases.values():
        print(
            f"  {served.phase.report()}\n"
            f"  {'':<22} {served.per_request(served.cpu):>6.0f} µs / "
            f"{served.per_request(served.emulator_cpu):>4.0f} µs"
        )
    for what in ("submit", "get"):
        gateway, floor = results.phases[f"gateway {what}"], results.phases[f"floor {what}"]
        straight = results.phases[f"emulator {what}"]
        above = gateway.per_request(gateway.cpu) - floor.per_request(floor.cpu)
        ratio = gateway.phase.throughput / straight.phase.throughput
        floor_ratio = floor.phase.throughput / straight.phase.throughput
        print(
            f"  {what}: gateway {gateway.per_request(gateway.cpu):.0f} µs = floor "
            f"{floor.per_request(floor.cpu):.0f} µs + {above:.0f} µs of lakegate's own; "
            f"throughput vs straight: gateway {ratio:.2f}x, floor {floor_ratio:.2f}x"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--requests", type=int, default=3000, help="per phase, after warm-up")
    parser.add_argument("--seconds", type=float, default=60.0, help="cap per phase")
    parser.add_argument("--namespaces", type=int, default=8)
    parser.add_argument("--event-loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    print(
        f"floor bench: {args.workers} workers, {args.requests} requests per phase, emulator, "
        "floor, gateway and load generator each in their own process on this machine's "
        f"cores; the gateway's poller idle, its event loop {args.event_loop}; both ledgers "
        "SQLite WAL synchronous=FULL in the same temporary directory"
    )
    with running_stack(
        namespaces=args.namespaces,
        lifecycle=LONG_LIFECYCLE,
        poller=QUIET_POLLER,
        event_loop=args.event_loop,
    ) as stack:
        port = free_port()
        log = stack.workdir / "floor.log"
        with log.open("wb") as out:
            command = [sys.executable, str(FLOOR), "--port", str(port), "--emulator",
                       stack.emulator_url, "--ledger", str(stack.workdir / "floor.db"),
                       "--token", DIRECT_PAT]  # fmt: skip
            floor = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
            try:
                url = f"http://{LOOPBACK}:{port}"
                _wait_ready(f"{url}/readyz", floor, log)
                results = asyncio.run(drive(stack, url, floor.pid, args))
            finally:
                _stop(floor)
    report(results)
    return 1 if any(s.phase.errors or not s.phase.latencies for s in results.phases.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
