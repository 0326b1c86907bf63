"""Databricks calls per active run per minute while the gateway follows 2,000 runs.

    .venv/bin/python tests/bench/bench_polling.py [--runs 2000] [--namespaces 20]
        [--window 60] [--min-interval 5] [--max-interval 60]

Starts the emulator and the gateway as processes (``_stack.running_stack``) with the
poller's default settings (5 s to 60 s; the interval is a tenth of the run's age held within
those bounds, +/-20 % jitter), submits ``--runs`` runs that stay RUNNING for an hour through
the gateway, spread over the namespaces (half PAT, half OAuth M2M), waits until the ledger
has every one PENDING or RUNNING, then counts the Databricks calls the gateway makes over the
window (from the emulator's /emulator/stats, by endpoint). Prints them per active run per
minute next to what one runs/get per run per minimum interval would cost, the gateway's RSS
and CPU with that many runs active, and the latency of GET /v1/.../runs/{id} while it polls.

The runs are young during the window (at most a few minutes old), so by age they would poll
at or near the minimum interval: this is the most a run costs. A group's walk of p pages
(100 runs a namespace: 4) waits at least p minimum intervals, so it is the pages, not the
age, that set the pace here; older runs poll less often, down to one poll per
``--max-interval``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from typing import Any

import aiohttp
from _stack import (
    CpuWatch,
    Phase,
    Stack,
    by_endpoint,
    count_delta,
    cpu_seconds,
    emulator_counts,
    proc_status_kib,
    run_phase,
    running_stack,
    spec,
)

# PENDING for 5 s, so the gateway also records each run's move to RUNNING; then an hour.
LIFECYCLE = {"pending_seconds": 5.0, "running_seconds": 3600.0, "terminating_seconds": 1.0}
FOLLOWED = ("PENDING", "RUNNING")
READY_TIMEOUT = 120.0
MAX_WINDOW = 180.0
PROBE_INTERVAL = 0.1  # one GET at a time, ten a second: a client, not a load


async def followed_counts(http: aiohttp.ClientSession, stack: Stack) -> dict[str, int]:
    """Runs per state across every namespace, from the gateway's own list API."""
    counts: dict[str, int] = {}
    for ns in stack.namespaces:
        cursor: str | None = None
        while True:
            params: list[tuple[str, str]] = [("limit", "500")]
            if cursor:
                params.append(("cursor", cursor))
            async with http.get(f"{stack.gateway_url}/v1/namespaces/{ns}/runs", params=params) as r:
                r.raise_for_status()
                page: dict[str, Any] = await r.json()
            for run in page["runs"]:
                counts[run["state"]] = counts.get(run["state"], 0) + 1
            cursor = page.get("next_cursor")
            if not cursor:
                break
    return counts


async def poll_lag(http: aiohttp.ClientSession, stack: Stack) -> tuple[float, float]:
    """The gateway's poll-lag histogram so far (sum of seconds late, runs polled when due)."""
    async with http.get(f"{stack.gateway_url}/metrics") as r:
        r.raise_for_status()
        text = await r.text()
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("lakegate_poll_lag_seconds_sum", "lakegate_poll_lag_seconds_count"):
            found[name] = float(value)
    return found.get("lakegate_poll_lag_seconds_sum", 0.0), found.get(
        "lakegate_poll_lag_seconds_count", 0.0
    )


async def probe(
    http: aiohttp.ClientSession, stack: Stack, runs: list[tuple[str, int]], until: float
) -> Phase:
    """GET runs one at a time through the gateway while it polls: what a client waits."""
    phase = Phase("GET run while polling")
    started = time.perf_counter()
    i = 0
    while time.perf_counter() < until:
        ns, run_id = runs[i % len(runs)]
        i += 1
        sent = time.perf_counter()
        try:
            async with http.get(f"{stack.gateway_url}/v1/namespaces/{ns}/runs/{run_id}") as r:
                await r.read()
                assert r.status == 200, f"get {r.status}"
        except (aiohttp.ClientError, AssertionError, TimeoutError) as exc:
            phase.errors[type(exc).__name__] = phase.errors.get(type(exc).__name__, 0) + 1
        else:
            phase.latencies.append(time.perf_counter() - sent)
        await asyncio.sleep(max(0.0, PROBE_INTERVAL - (time.perf_counter() - sent)))
    phase.elapsed = time.perf_counter() - started
    return phase


async def drive(stack: Stack, args: argparse.Namespace) -> int:
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=args.workers * 2)
    runs: list[tuple[str, int]] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def submit(i: int) -> None:
            ns = stack.namespaces[i % len(stack.namespaces)]
            url = f"{stack.gateway_url}/v1/namespaces/{ns}/runs"
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            async with http.post(url, json={"spec": spec(f"poll-{i}")}, headers=headers) as r:
                data = await r.json()
                assert r.status in (201, 202), f"submit {r.status}"
                runs.append((ns, int(data["id"])))

        submitted = await run_phase("submit", args.workers, args.runs, READY_TIMEOUT, submit)
        first_submit = time.monotonic() - submitted.elapsed
        print(f"submitted: {submitted.report()}")
        if submitted.errors or len(runs) != args.runs:
            print(f"submission failed: {submitted.errors}")
            return 1

        # Every run must be followed (PENDING or RUNNING in the ledger) before counting.
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            states = await followed_counts(http, stack)
            followed = sum(states.get(s, 0) for s in FOLLOWED)
            if followed == args.runs:
                break
            if time.monotonic() > deadline:
                print(f"only {followed} of {args.runs} runs PENDING/RUNNING: {states}")
                return 1
            await asyncio.sleep(1)
        print(f"ledger: {states} after {time.monotonic() - first_submit:.1f} s")

        # Let the poller's first round, which follows each submission, pass.
        await asyncio.sleep(args.settle)
        window_start = time.monotonic()
        before = await emulator_counts(http, stack.emulator_url)
        lag_before = await poll_lag(http, stack)
        cpu_before = cpu_seconds(stack.gateway_pid)
        latency = await probe(http, stack, runs, time.perf_counter() + args.window)
        cpu = cpu_seconds(stack.gateway_pid) - cpu_before
        calls = by_endpoint(count_delta(before, await emulator_counts(http, stack.emulator_url)))
        lag_after = await poll_lag(http, stack)
        window = time.monotonic() - window_start
        rss = proc_status_kib(stack.gateway_pid, "VmRSS")
        peak = proc_status_kib(stack.gateway_pid, "VmHWM")
        states = await followed_counts(http, stack)

    active = sum(states.get(s, 0) for s in FOLLOWED)
    young = window_start - (first_submit + submitted.elapsed)
    old = time.monotonic() - first_submit
    print(
        f"window: {window:.1f} s, run ages {young:.0f} s to {old:.0f} s across it; "
        f"{active} runs PENDING/RUNNING at its end ({states})"
    )
    per_min = 60.0 / window
    print(f"  {'Databricks calls':<26} {'in window':>9} {'per min':>9} {'per run/min':>12}")
    total = sum(calls.values())
    for endpoint, n in [*calls.items(), ("total", total)]:
        print(f"  {endpoint:<26} {n:>9} {n * per_min:>9.0f} {n * per_min / args.runs:>12.3f}")
    naive = args.runs * 60.0 / args.min_interval
    ratio = total * per_min / naive
    print(
        f"one runs/get per run every {args.min_interval:g} s: {naive:,.0f} calls per min = "
        f"{naive / args.runs:.2f} per run/min\n"
        f"lakegate / that: {ratio:.4f} ({1 / ratio if ratio else float('inf'):.0f}x fewer calls)"
    )
    print(
        f"gateway process with {active} active runs: RSS {rss / 1024:.0f} MiB "
        f"(peak {peak / 1024:.0f} MiB), CPU {cpu / window:.0%} of one core during the window"
    )
    lag_sum, lag_count = (a - b for a, b in zip(lag_after, lag_before, strict=True))
    if lag_count:
        # A poller that keeps up polls each run close to when it is due; a growing lag means
        # the ledger or the loop cannot keep pace with the number of active runs.
        mean = lag_sum / lag_count
        print(f"poll lag (due -> polled): mean {mean:.2f} s over {lag_count:.0f} due runs")
    print(f"  {latency.report()}")
    ok = active == args.runs and not latency.errors and bool(latency.latencies)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--window", type=float, default=60.0, help=f"s, at most {MAX_WINDOW:g}")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before the window")
    parser.add_argument("--workers", type=int, default=32, help="concurrent submissions")
    parser.add_argument("--min-interval", type=float, default=5.0, help="poller minimum, s")
    parser.add_argument("--max-interval", type=float, default=60.0, help="poller maximum, s")
    parser.add_argument("--log-level", default="info", help="the gateway's (default: info)")
    args = parser.parse_args()
    if not 0 < args.window <= MAX_WINDOW:
        parser.error(f"--window must be in (0, {MAX_WINDOW:g}]")
    print(
        f"polling bench: {args.runs} runs over {args.namespaces} namespaces (PAT and OAuth M2M "
        f"alternating), runs RUNNING for an hour; poller min {args.min_interval:g} s, max "
        f"{args.max_interval:g} s; emulator and gateway in their own processes, "
        f"{os.cpu_count()} CPUs"
    )
    poller = {
        "min_interval_seconds": args.min_interval,
        "max_interval_seconds": args.max_interval,
    }
    with running_stack(
        namespaces=args.namespaces, lifecycle=LIFECYCLE, poller=poller, log_level=args.log_level
    ) as stack:
        watch = CpuWatch((stack.gateway_pid, stack.emulator_pid))
        status = asyncio.run(drive(stack, args))
        print(watch.report())
        return status


if __name__ == "__main__":
    sys.exit(main())
