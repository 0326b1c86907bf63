"""The gateway at scale: its RSS with 10,000 active runs, and how fast a restart catches up.

    .venv/bin/python tests/bench/bench_scale.py [--rss-runs 10000] [--restart-runs 5000]
        [--namespaces 20] [--skip-rss] [--skip-restart]

Two stacks (``_stack.running_stack``: emulator and gateway as processes, the poller's default
settings, half the namespaces PAT and half OAuth M2M), one after the other:

- **RSS.** Submits ``--rss-runs`` runs that stay PENDING for hours, waits until the ledger
  follows every one, lets the poller go round for ``--settle`` seconds and prints the gateway's
  RSS and its peak (VmRSS, VmHWM), and whether ``kubernetes_asyncio`` is imported by
  ``python -m gateway`` with ``kubernetes.mode: off`` (the bench stack's).
- **Restart.** Submits ``--restart-runs`` runs, waits until the ledger has every one PENDING,
  then, for SIGKILL and then SIGTERM: stops the gateway, moves the emulator's clock on so that
  every run is in its next state at Databricks (PENDING -> RUNNING, then RUNNING ->
  TERMINATING), starts the gateway again and times until the ledger shows every run in that
  state. That is "reconciled": every run's state in the ledger refreshed from the emulator
  after the restart. The time is counted from the new process's start (so it includes the
  process's start-up), and also from when it answered /readyz. The ledger is read straight
  from its SQLite file (read-only), so watching costs the gateway nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
from _stack import (
    ROOT,
    Stack,
    by_endpoint,
    count_delta,
    emulator_counts,
    proc_status_kib,
    run_phase,
    running_stack,
    spec,
)

HOUR = 3600.0
# Each state lasts an hour at the emulator: runs hold still until the bench moves its clock.
LIFECYCLE = {"pending_seconds": HOUR, "running_seconds": HOUR, "terminating_seconds": HOUR}
# A clock step that moves every run to its next state: over an hour, by more than the time
# the submissions and the wait took, and well short of two.
STEP_SECONDS = HOUR + 600.0
SUBMIT_TIMEOUT = 600.0
FOLLOW_TIMEOUT = 300.0
RECONCILE_TIMEOUT = 300.0


def ledger_states(path: Path) -> Counter[str]:
    """Runs per state, read from the ledger's file without going through the gateway."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as conn:
        rows = conn.execute("SELECT state, COUNT(*) FROM runs GROUP BY state").fetchall()
    return Counter({state: n for state, n in rows})


async def wait_for(path: Path, state: str, n: int, within: float) -> float | None:
    """Seconds until the ledger holds ``n`` runs in ``state`` (None past ``within``)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if ledger_states(path).get(state, 0) >= n:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


async def submit_runs(http: aiohttp.ClientSession, stack: Stack, n: int) -> int:
    async def submit(i: int) -> None:
        ns = stack.namespaces[i % len(stack.namespaces)]
        url = f"{stack.gateway_url}/v1/namespaces/{ns}/runs"
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        async with http.post(url, json={"spec": spec(f"scale-{i}")}, headers=headers) as r:
            await r.read()
            assert r.status in (201, 202), f"submit {r.status}"

    phase = await run_phase("submit", 32, n, SUBMIT_TIMEOUT, submit)
    print(f"  {phase.report()}")
    return len(phase.latencies)


def kubernetes_imported() -> bool:
    """Whether importing what ``lakegate serve`` runs pulls kubernetes_asyncio in."""
    code = "import sys, gateway.cli.serve, gateway.app; print('kubernetes_asyncio' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1] == "True"


async def measure_rss(args: argparse.Namespace) -> bool:
    print(f"RSS: {args.rss_runs} runs over {args.namespaces} namespaces")
    with running_stack(namespaces=args.namespaces, lifecycle=LIFECYCLE) as stack:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            idle = proc_status_kib(stack.gateway_pid, "VmRSS")
            if await submit_runs(http, stack, args.rss_runs) != args.rss_runs:
                return False
            if await wait_for(stack.ledger_path, "PENDING", args.rss_runs, FOLLOW_TIMEOUT) is None:
                print(f"  not all followed: {dict(ledger_states(stack.ledger_path))}")
                return False
            await asyncio.sleep(args.settle)
            rss = proc_status_kib(stack.gateway_pid, "VmRSS")
            peak = proc_status_kib(stack.gateway_pid, "VmHWM")
    print(f"  gateway RSS with {args.rss_runs} active runs {rss / 1024:.0f} MiB")
    kube = "imported" if kubernetes_imported() else "not imported"
    print(
        f"  gateway RSS idle {idle / 1024:.0f} MiB; with {args.rss_runs} active runs "
        f"{rss / 1024:.0f} MiB (peak {peak / 1024:.0f} MiB); kubernetes.mode off, "
        f"kubernetes_asyncio {kube} by `lakegate serve`"
    )
    return True


async def restart_once(
    http: aiohttp.ClientSession, stack: Stack, how: signal.Signals, state: str, n: int
) -> bool:
    before = await emulator_counts(http, stack.emulator_url)
    old_pid = stack.gateway_pid

    def step_clock() -> None:
        # While no gateway runs: no run can be seen in its new state before the restart.
        request = urllib.request.Request(  # noqa: S310 - the loopback emulator
            f"{stack.emulator_url}/emulator/clock/advance",
            data=json.dumps({"seconds": STEP_SECONDS}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as r:  # noqa: S310
            assert r.status == 200

    started = stack.restart_gateway(how, step_clock)  # returns once /readyz answers
    ready = time.monotonic() - started
    took = await wait_for(stack.ledger_path, state, n, RECONCILE_TIMEOUT)
    calls = by_endpoint(count_delta(before, await emulator_counts(http, stack.emulator_url)))
    if took is None:
        print(f"  {how.name}: not reconciled: {dict(ledger_states(stack.ledger_path))}")
        return False
    total = ready + took
    print(
        f"  {how.name} (pid {old_pid} -> {stack.gateway_pid}): {n} runs {state} in the ledger "
        f"{total:.1f} s after the new process started ({ready:.1f} s to /readyz, "
        f"{total - ready:.1f} s after it); Databricks calls {dict(calls)}; "
        f"RSS {proc_status_kib(stack.gateway_pid, 'VmRSS') / 1024:.0f} MiB"
    )
    return True


async def measure_restart(args: argparse.Namespace) -> bool:
    n = args.restart_runs
    where = args.ledger_dir or "the temporary directory"
    print(f"restart: {n} runs in flight over {args.namespaces} namespaces, ledger in {where}")
    with running_stack(
        namespaces=args.namespaces, lifecycle=LIFECYCLE, ledger_dir=args.ledger_dir
    ) as stack:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            if await submit_runs(http, stack, n) != n:
                return False
            if await wait_for(stack.ledger_path, "PENDING", n, FOLLOW_TIMEOUT) is None:
                print(f"  not all followed: {dict(ledger_states(stack.ledger_path))}")
                return False
            await asyncio.sleep(args.settle)  # the poller's first rounds pass
            ok = await restart_once(http, stack, signal.SIGKILL, "RUNNING", n)
            ok = ok and await restart_once(http, stack, signal.SIGTERM, "TERMINATING", n)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rss-runs", type=int, default=10_000)
    parser.add_argument("--restart-runs", type=int, default=5_000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds of polling first")
    parser.add_argument(
        "--ledger-dir", default=None, help="where the ledger lives (default: beside /tmp)"
    )
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-restart", action="store_true")
    args = parser.parse_args()
    ok = True
    if not args.skip_rss:
        ok = asyncio.run(measure_rss(args)) and ok
    if not args.skip_restart:
        ok = asyncio.run(measure_restart(args)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
