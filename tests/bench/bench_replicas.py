"""Submit and get throughput: 1 replica on SQLite, 1 and 3 replicas on PostgreSQL, in one run.

    LAKEGATE_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python tests/bench/bench_replicas.py [--workers 32] [--requests 2000]
        [--namespaces 8] [--seconds 60] [--proof | --proof-only] [--proof-runs 2000]

Each variant starts its own emulator and gateway processes (SQLite: ``_stack.running_stack``;
PostgreSQL: ``tests.e2e.replica_stack``, a fresh schema of the server named by the DSN), then
one aiohttp load generator in this process sends ``--requests`` POST /v1/namespaces/{ns}/runs
(round-robin over the namespaces and, with 3 replicas, over the replicas, as a Service
would), then as many GETs of those runs. Runs last an hour in the emulator and the poller is
idle, so what is measured is the request path and its ledger. Figures are printed per variant
and as ratios to SQLite's single replica.

``--proof`` then runs the replica proof of ``tests/e2e/test_replicas.py`` at the issue's full
size (``--proof-runs``, 2,000 by default; the test sends fewer): three replicas, one
SIGKILLed and restarted, every promise checked, and its timings printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from _stack import CpuWatch, Phase, run_phase, running_stack, spec

from tests.e2e.replica_stack import replica_stack
from tests.store.pg import POSTGRES_DSN, SKIP_REASON

LONG_LIFECYCLE = {"pending_seconds": 1.0, "running_seconds": 3600.0, "terminating_seconds": 1.0}
QUIET_POLLER = {"min_interval_seconds": 3600.0, "max_interval_seconds": 3600.0}
UNLIMITED = {
    "max_active_runs": 1_000_000,
    "max_queued_runs": 1_000_000,
    "submissions_per_minute": 1_000_000.0,
    "burst": 1_000,  # the most a bucket may hold; the rate refills it far faster than used
}


@dataclass
class Variant:
    label: str
    phases: dict[str, Phase] = field(default_factory=dict)
    noise: str = ""


async def drive(urls: list[str], namespaces: list[str], args: argparse.Namespace) -> Variant:
    """Warm-up, then the submit phase and the get phase against ``urls`` round-robin."""
    variant = Variant("")
    made: list[tuple[str, str, int]] = []
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=args.workers * 2)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def submit(i: int) -> None:
            url, ns = urls[i % len(urls)], namespaces[i % len(namespaces)]
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            body = {"spec": spec("bench-replicas")}
            async with http.post(f"{url}/v1/namespaces/{ns}/runs", json=body,
                                 headers=headers) as resp:  # fmt: skip
                data = await resp.json()
                assert resp.status in (201, 202), f"submit {resp.status}"
                made.append((url, ns, int(data["id"])))

        async def get(i: int) -> None:
            _, ns, run_id = made[i % len(made)]
            # Any replica answers for any run: the ledger is shared.
            url = urls[(i + 1) % len(urls)]
            async with http.get(f"{url}/v1/namespaces/{ns}/runs/{run_id}") as resp:
                await resp.read()
                assert resp.status == 200, f"get {resp.status}"

        warm = await run_phase("warm-up", args.workers, args.workers * 4, args.seconds, submit)
        if warm.errors:
            raise RuntimeError(f"warm-up failed: {warm.errors}")
        plan: tuple[tuple[str, Callable[[int], Awaitable[None]]], ...] = (
            ("submit", submit),
            ("get", get),
        )
        for name, call in plan:
            variant.phases[name] = await run_phase(
                name, args.workers, args.requests, args.seconds, call
            )
    return variant


def sqlite_variant(args: argparse.Namespace) -> Variant:
    with running_stack(
        namespaces=args.namespaces, lifecycle=LONG_LIFECYCLE, poller=QUIET_POLLER
    ) as stack:
        watch = CpuWatch((stack.gateway_pid, stack.emulator_pid))
        variant = asyncio.run(drive([stack.gateway_url], stack.namespaces, args))
        variant.noise = watch.report()
    variant.label = "SQLite, 1 replica"
    return variant


async def postgres_variant(args: argparse.Namespace, replicas: int) -> Variant:
    # The process group prints each log's tail on the way out, for failing tests: not here.
    with tempfile.TemporaryDirectory(prefix="lakegate-bench-") as tmp, quiet():
        async with replica_stack(
            Path(tmp), replicas=replicas, namespaces=args.namespaces, quotas=UNLIMITED,
            log_level="info", lifecycle=LONG_LIFECYCLE, poller=QUIET_POLLER,
        ) as stack:  # fmt: skip
            pids = [p.pid for p in (stack.emulator, *stack.replicas) if p.pid is not None]
            watch = CpuWatch(tuple(pids))
            names = [f"team-{i:02d}" for i in range(args.namespaces)]
            variant = await drive(stack.urls, names, args)
            variant.noise = watch.report()
    variant.label = f"PostgreSQL, {replicas} replica{'s' if replicas > 1 else ''}"
    return variant


async def proof(args: argparse.Namespace) -> None:
    from tests.e2e.test_replicas import MAX_ACTIVE, NAMESPACES, QUOTAS, check
    from tests.e2e.test_replicas import proof as scenario
    from tests.webhooks.conftest import SECRET
    from tests.webhooks.receiver import Receiver, running

    receiver = Receiver(SECRET)
    with tempfile.TemporaryDirectory(prefix="lakegate-proof-") as tmp, quiet():
        async with running(receiver), replica_stack(
            Path(tmp), replicas=3, namespaces=NAMESPACES, quotas=QUOTAS,
            webhook_url=receiver.url, webhook_secret=SECRET,
        ) as stack:  # fmt: skip
            started = time.monotonic()
            found = await scenario(stack, receiver, args.proof_runs)
            check(found, args.proof_runs, stack.principals)
    times = {k: round(v, 1) for k, v in found.seconds.items() if k != "killed_at"}
    print(
        f"-- proof: {args.proof_runs} runs, {NAMESPACES} namespaces, 3 replicas, one SIGKILLed "
        f"and restarted: all checks passed in {time.monotonic() - started:.0f} s {times}; "
        f"highest active per namespace {max(found.highest_active.values())} (limit "
        f"{MAX_ACTIVE}) over {found.samples} samples; no run held by two replicas at once; "
        f"{len(found.completed)} run.completed delivered"
    )


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        yield


def report(variants: list[Variant]) -> None:
    base = variants[0].phases
    for variant in variants:
        print(f"-- {variant.label}")
        for phase in variant.phases.values():
            print(f"  {phase.report()}")
        ratios = "   ".join(
            f"{name} {phase.throughput / base[name].throughput:.2f}x"
            for name, phase in variant.phases.items()
            if base[name].throughput
        )
        print(f"  throughput vs SQLite, 1 replica: {ratios}")
        print(f"  {variant.noise}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000, help="per phase, after warm-up")
    parser.add_argument("--seconds", type=float, default=60.0, help="cap per phase")
    parser.add_argument("--namespaces", type=int, default=8)
    parser.add_argument("--proof", action="store_true", help="then the replica proof")
    parser.add_argument("--proof-runs", type=int, default=2000)
    parser.add_argument("--proof-only", action="store_true", help="the proof, no throughput")
    args = parser.parse_args()
    if POSTGRES_DSN is None:
        print(SKIP_REASON, file=sys.stderr)
        return 2
    print(
        f"replicas bench: {args.workers} workers, {args.requests} requests per phase (cap "
        f"{args.seconds:g} s), {args.namespaces} namespaces; emulator, gateways, PostgreSQL "
        f"and the load generator share {os.cpu_count()} CPUs"
    )
    if not args.proof_only:
        variants = [sqlite_variant(args)]
        for replicas in (1, 3):
            variants.append(asyncio.run(postgres_variant(args, replicas)))
        report(variants)
    if args.proof or args.proof_only:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(proof(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
