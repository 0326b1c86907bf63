"""Submit and get through the gateway versus straight to the Databricks emulator.

    .venv/bin/python tests/bench/bench_gateway.py [--workers 32] [--requests 3000]
        [--namespaces 8] [--tmpfs] [--quiet-poller] [--seconds 60] [--tasks 1]
        [--summary FILE] [--gateway-source DIR]

The emulator and the gateway each run in their own process (``_stack.running_stack``), and
one aiohttp load generator, in this process, drives both in the same run, so the ratio
compares like with like: N workers send ``--requests`` runs/submit straight to the emulator
with a PAT and a fresh idempotency_token each, then the same number of POST
/v1/namespaces/{ns}/runs to the gateway, spread round-robin over the namespaces (half use a
PAT, half OAuth M2M); then runs/get of the emulator's runs, and GET of the gateway's runs
(with their history). A warm-up first takes connection set-up and OAuth token minting out of
the figures.

Runs last an hour in the emulator, so every run submitted stays active and the gateway's
poller (default settings: first poll 5 s after submission) follows them while the load runs:
that work is part of what the gateway costs, and is shown as the Databricks calls the gateway
made during its phases. ``--quiet-poller`` sets the poller's interval to an hour instead, so
it never polls during the bench, to show the request path alone.

The ledger is SQLite with synchronous=FULL: every commit is fsynced. An accepted submit
writes twice (the SUBMITTING row before Databricks is called, then PENDING with the run id),
and the ledger commits the writes queued together as one transaction (group commit), so under
load a submit costs a fraction of an fsync. The script measures fsync latency on the ledger's
file system; ``--tmpfs`` runs the whole bench a second time with the ledger on /dev/shm, where
fsync costs nothing, and prints what share of the submit latency the difference is. It also
prints the ledger's commits and writes during the submit phase, from the gateway's own
/metrics (``lakegate_ledger_commits_total``, ``lakegate_ledger_writes_total``): how many writes
each commit carried; and, per gateway phase, the garbage collector's collections and the CPU
they took per request (``lakegate_gc_pause_seconds``).

``--tasks N`` gives every spec N tasks (a pipeline, each task with a job cluster and
parameters; 30 are about 12 KB): what the ledger stores, decodes and sends grows with it.

What the issue-16 targets are read from: the "µs per request" column (gateway process CPU
time per request, user + system, from /proc, not wall time) and the throughput ratios, all
from the one run. The gateway's CPU is also split by thread: its main thread, where the event
loop runs, and the others (the ledger's thread, and any executor's). ``--event-loop uvloop``
runs the gateway on uvloop (server.event_loop).

The machine is shared and moves by half within an hour, so the report also gives the
gateway's CPU per request as a multiple of the emulator's per straight request in the same
run, which a slower hour slows on both sides. ``--summary FILE`` writes the run's figures
(``figures()``) as JSON and ``--gateway-source DIR`` runs another checkout's gateway against
this one's emulator: ``compare_gateway.py`` alternates runs of two revisions with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from _stack import (
    DIRECT_PAT,
    CpuWatch,
    Phase,
    Stack,
    by_endpoint,
    count_delta,
    cpu_seconds,
    emulator_counts,
    loop_thread_cpu_seconds,
    proc_status_kib,
    run_phase,
    running_stack,
    spec,
)

API = "/api/2.2/jobs/runs"
LONG_LIFECYCLE = {"pending_seconds": 1.0, "running_seconds": 3600.0, "terminating_seconds": 1.0}
# Long enough that the poller never comes due while the bench runs.
QUIET_POLLER = {"min_interval_seconds": 3600.0, "max_interval_seconds": 3600.0}
TMPFS = "/dev/shm"  # noqa: S108 - a RAM-backed file system on purpose, not a temp file


@dataclass
class Variant:
    label: str
    ledger_dir: str | None
    phases: dict[str, Phase] = field(default_factory=dict)
    cpu: dict[str, tuple[float, float]] = field(default_factory=dict)  # phase -> gw, emu s
    loop_cpu: dict[str, float] = field(default_factory=dict)  # phase -> gateway's loop thread s
    calls: dict[str, dict[str, int]] = field(default_factory=dict)  # phase -> emulator calls
    # phase -> how much each of GATEWAY_COUNTERS grew, from the gateway's /metrics
    counters: dict[str, dict[str, float]] = field(default_factory=dict)
    rss_kib: int = 0
    fsync_ms: float = 0.0
    noise: str = ""


def fsync_p50_ms(directory: str, samples: int = 200) -> float:
    """Median time of a 4 KiB write's fsync on ``directory``'s file system (a WAL commit)."""
    times = []
    fd, path = tempfile.mkstemp(dir=directory, prefix="lakegate-fsync-")
    try:
        for _ in range(samples):
            os.write(fd, b"\0" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    return times[len(times) // 2] * 1000


# Counters of the gateway's /metrics the report reads, by the name each is kept under.
GATEWAY_COUNTERS = {
    "commits": "lakegate_ledger_commits_total",
    "writes": "lakegate_ledger_writes_total",
    "gc_collections": "lakegate_gc_pause_seconds_count",
    "gc_seconds": "lakegate_gc_pause_seconds_sum",
}


async def gateway_counters(http: aiohttp.ClientSession, gateway: str) -> dict[str, float]:
    """GATEWAY_COUNTERS read from one scrape of the gateway's /metrics, summed over labels
    (the collector's generations)."""
    async with http.get(f"{gateway}/metrics") as resp:
        text = await resp.text()
    found = dict.fromkeys(GATEWAY_COUNTERS, 0.0)
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        name = series.partition("{")[0]
        for key, metric in GATEWAY_COUNTERS.items():
            if name == metric:
                found[key] += float(value)
    return found


# Wraps each measured phase, by its name: profile_gateway.py samples the gateway through it.
PhaseHook = Callable[[str], AbstractContextManager[object]]


async def drive(
    stack: Stack, args: argparse.Namespace, variant: Variant, hook: PhaseHook | None = None
) -> None:
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=args.workers * 2)
    direct_ids: list[int] = []
    gateway_runs: list[tuple[str, int]] = []
    namespaces = stack.namespaces
    emu, gw = stack.emulator_url, stack.gateway_url
    direct_auth = {"Authorization": f"Bearer {DIRECT_PAT}"}

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def direct_submit(_i: int) -> None:
            body = {**spec("bench-direct", args.tasks), "idempotency_token": uuid.uuid4().hex}
            async with http.post(f"{emu}{API}/submit", json=body, headers=direct_auth) as resp:
                data = await resp.json()
                assert resp.status == 200, f"runs/submit {resp.status}"
                direct_ids.append(data["run_id"])

        async def gateway_submit(i: int) -> None:
            ns = namespaces[i % len(namespaces)]
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            body = {"spec": spec("bench-gateway", args.tasks)}
            url = f"{gw}/v1/namespaces/{ns}/runs"
            async with http.post(url, json=body, headers=headers) as resp:
                data = await resp.json()
                # 201 only: a 202 means the run was accepted but not yet at Databricks.
                assert resp.status == 201, f"submit {resp.status} {data.get('state')}"
                gateway_runs.append((ns, int(data["id"])))

        async def direct_get(i: int) -> None:
            params = {"run_id": direct_ids[i % len(direct_ids)]}
            async with http.get(f"{emu}{API}/get", params=params, headers=direct_auth) as resp:
                await resp.read()
                assert resp.status == 200, f"runs/get {resp.status}"

        async def gateway_get(i: int) -> None:
            ns, run_id = gateway_runs[i % len(gateway_runs)]
            async with http.get(f"{gw}/v1/namespaces/{ns}/runs/{run_id}") as resp:
                await resp.read()
                assert resp.status == 200, f"get {resp.status}"

        warm = args.workers * 4
        warm_ups = (("warm-up emulator", direct_submit), ("warm-up gateway", gateway_submit))
        for name, call in warm_ups:
            warm_up = await run_phase(name, args.workers, warm, args.seconds, call)
            if warm_up.errors:
                raise RuntimeError(f"{name} failed: {warm_up.errors}")

        plan = (
            ("emulator runs/submit", direct_submit),
            ("gateway submit", gateway_submit),
            ("emulator runs/get", direct_get),
            ("gateway get", gateway_get),
        )
        for name, call in plan:
            before = await emulator_counts(http, emu)
            counters_before = await gateway_counters(http, gw)
            cpu_before = cpu_seconds(stack.gateway_pid), cpu_seconds(stack.emulator_pid)
            loop_before = loop_thread_cpu_seconds(stack.gateway_pid)
            with hook(name) if hook is not None else nullcontext():
                phase = await run_phase(name, args.workers, args.requests, args.seconds, call)
            gw_cpu = cpu_seconds(stack.gateway_pid) - cpu_before[0]
            emu_cpu = cpu_seconds(stack.emulator_pid) - cpu_before[1]
            variant.cpu[name] = (gw_cpu, emu_cpu)
            variant.loop_cpu[name] = loop_thread_cpu_seconds(stack.gateway_pid) - loop_before
            variant.calls[name] = count_delta(before, await emulator_counts(http, emu))
            counters_after = await gateway_counters(http, gw)
            variant.counters[name] = {
                key: counters_after[key] - counters_before[key] for key in GATEWAY_COUNTERS
            }
            variant.phases[name] = phase
        variant.rss_kib = proc_status_kib(stack.gateway_pid, "VmRSS")


def bench(
    args: argparse.Namespace,
    variant: Variant,
    hook: Callable[[Stack], PhaseHook] | None = None,
) -> None:
    poller = QUIET_POLLER if args.quiet_poller else None
    with running_stack(
        namespaces=args.namespaces,
        lifecycle=LONG_LIFECYCLE,
        poller=poller,
        ledger_dir=variant.ledger_dir,
        log_level=args.log_level,
        event_loop=args.event_loop,
        gateway_source=args.gateway_source,
    ) as stack:
        variant.fsync_ms = fsync_p50_ms(str(stack.ledger_path.parent))
        watch = CpuWatch((stack.gateway_pid, stack.emulator_pid))
        asyncio.run(drive(stack, args, variant, None if hook is None else hook(stack)))
        variant.noise = watch.report()


def _ratio_line(what: str, gateway: Phase, direct: Phase) -> str:
    if not gateway.latencies or not direct.latencies:
        return f"  {what:<7} n/a"
    return (
        f"  {what:<7} throughput {gateway.throughput / direct.throughput:>5.2f}x"
        f"   latency p50 {gateway.percentile(0.5) / direct.percentile(0.5):>5.1f}x"
        f"   p90 {gateway.percentile(0.9) / direct.percentile(0.9):>5.1f}x"
        f"   p99 {gateway.percentile(0.99) / direct.percentile(0.99):>5.1f}x"
    )


def _calls_summary(calls: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in by_endpoint(calls).items()) or "none"


def figures(variant: Variant) -> dict[str, float]:
    """The run's figures a comparison reads: CPU per request in µs, and the gateway's as a
    multiple of the emulator's CPU per straight request of the same kind, which travels
    between machines and hours better than µs do (a slower machine slows both)."""
    p = variant.phases
    found: dict[str, float] = {}
    for kind in ("submit", "get"):
        gateway, straight = f"gateway {kind}", f"emulator runs/{kind}"
        n_gw, n_emu = len(p[gateway].latencies) or 1, len(p[straight].latencies) or 1
        gw_us = variant.cpu[gateway][0] / n_gw * 1e6
        emu_us = variant.cpu[straight][1] / n_emu * 1e6
        loop_us = variant.loop_cpu[gateway] / n_gw * 1e6
        found |= {
            f"{kind}_us": gw_us,
            f"{kind}_loop_us": loop_us,
            f"{kind}_other_threads_us": gw_us - loop_us,
            f"emulator_{kind}_us": emu_us,
            f"{kind}_x_emulator_cpu": gw_us / emu_us if emu_us else float("nan"),
            f"{kind}_throughput_x": p[gateway].throughput / p[straight].throughput
            if p[straight].throughput
            else float("nan"),
        }
    return found


def report(variant: Variant) -> None:
    print(f"-- {variant.label}")
    for phase in variant.phases.values():
        print(f"  {phase.report()}")
        for error, count in sorted(phase.errors.items()):
            print(f"  {'':<22} {count} x {error}")
    p = variant.phases
    print("  gateway / emulator (straight), same load generator:")
    print(_ratio_line("submit", p["gateway submit"], p["emulator runs/submit"]))
    print(_ratio_line("get", p["gateway get"], p["emulator runs/get"]))
    print("  CPU seconds used per phase (gateway process / emulator process):")
    for name, (gw_cpu, emu_cpu) in variant.cpu.items():
        n = len(p[name].latencies) or 1
        print(
            f"    {name:<22} {gw_cpu:>5.2f} s / {emu_cpu:>5.2f} s"
            f"   = {gw_cpu / n * 1e6:>5.0f} / {emu_cpu / n * 1e6:>4.0f} µs per request"
        )
    found = figures(variant)
    print(
        "  gateway CPU per request as a multiple of the emulator's per straight request "
        f"(travels between machines): submit {found['submit_x_emulator_cpu']:.2f}x, "
        f"get {found['get_x_emulator_cpu']:.2f}x"
    )
    for kind in ("submit", "get"):
        print(
            f"  gateway {kind}, the gateway's threads: event loop "
            f"{found[f'{kind}_loop_us']:.0f} µs, the others (the ledger's) "
            f"{found[f'{kind}_other_threads_us']:.0f} µs per request"
        )
    for name in ("gateway submit", "gateway get"):
        print(f"  Databricks calls during {name}: {_calls_summary(variant.calls[name])}")
    for name in ("gateway submit", "gateway get"):
        n = len(p[name].latencies) or 1
        grew = variant.counters[name]
        print(
            f"  garbage collector during {name}: {grew['gc_collections']:.0f} collections, "
            f"{grew['gc_seconds'] / n * 1e6:.1f} µs per request"
        )
    commits, writes = (variant.counters["gateway submit"][k] for k in ("commits", "writes"))
    submits = len(p["gateway submit"].latencies) or 1
    print(
        f"  ledger during gateway submit: {commits:.0f} commits for {writes:.0f} writes "
        f"({writes / max(commits, 1):.1f} writes per commit; {commits / submits:.2f} commits "
        "per submit, the poller's included)"
    )
    print(
        f"  ledger fsync p50 {variant.fsync_ms:.3f} ms on the ledger's file system; the ledger "
        "commits each batch of queued writes with one fsync (group commit)"
    )
    print(f"  gateway RSS after the bench: {variant.rss_kib / 1024:.0f} MiB")
    print(f"  {variant.noise}")


def arguments(description: str = __doc__.splitlines()[0]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--requests", type=int, default=3000, help="per phase, after warm-up")
    parser.add_argument("--seconds", type=float, default=60.0, help="cap per phase")
    parser.add_argument("--namespaces", type=int, default=8)
    parser.add_argument(
        "--tasks", type=int, default=1,
        help="tasks in each run's spec (default 1); 30 make about 12 KB, a real pipeline's size",
    )  # fmt: skip
    parser.add_argument("--tmpfs", action="store_true", help=f"also run with the ledger in {TMPFS}")
    parser.add_argument("--quiet-poller", action="store_true", help="keep the poller idle")
    parser.add_argument("--log-level", default="info", help="the gateway's (default: info)")
    parser.add_argument(
        "--event-loop", choices=("asyncio", "uvloop"), default="asyncio",
        help="the gateway's server.event_loop (default: asyncio)",
    )  # fmt: skip
    parser.add_argument(
        "--gateway-source", type=Path, default=None,
        help="run the gateway from this checkout (default: this one); compare_gateway.py uses it",
    )  # fmt: skip
    parser.add_argument(
        "--summary", type=Path, default=None,
        help="also write the ledger-on-disk run's figures (figures()) to this file as JSON",
    )  # fmt: skip
    return parser


def main() -> int:
    args = arguments().parse_args()
    poller = "idle (interval 1 h)" if args.quiet_poller else "default settings (5 s .. 60 s)"
    print(
        f"gateway bench: {args.workers} workers, {args.requests} requests per phase (cap "
        f"{args.seconds:g} s) after {args.workers * 4} warm-up submits each way, "
        f"{args.namespaces} namespaces (PAT and OAuth M2M alternating), {args.tasks} task(s) "
        "per spec\n"
        f"emulator, gateway and load generator each in their own process, sharing "
        f"{os.cpu_count()} CPUs: every gateway request also costs an emulator request on the "
        f"same cores\nruns stay active for an hour; gateway poller {poller}, gateway log "
        f"level {args.log_level}, event loop {args.event_loop}, ledger SQLite WAL "
        "synchronous=FULL"
    )
    variants = [Variant("ledger on disk (temporary directory)", None)]
    if args.tmpfs:
        variants.append(Variant(f"ledger on tmpfs ({TMPFS}, fsync is free)", TMPFS))
    failed = False
    for variant in variants:
        bench(args, variant)
        report(variant)
        failed |= any(ph.errors or not ph.latencies for ph in variant.phases.values())
    if args.summary is not None and not failed:
        args.summary.write_text(json.dumps(figures(variants[0]), indent=1), encoding="utf-8")
    if len(variants) == 2:
        disk = variants[0].phases["gateway submit"]
        tmpfs = variants[1].phases["gateway submit"]
        if disk.latencies and tmpfs.latencies:
            p50_disk, p50_tmpfs = disk.percentile(0.5), tmpfs.percentile(0.5)
            print(
                f"-- durable ledger: gateway submit p50 {p50_disk:.2f} ms on disk vs "
                f"{p50_tmpfs:.2f} ms on tmpfs: {(p50_disk - p50_tmpfs) / p50_disk:.0%} of the "
                f"latency; throughput {disk.throughput:.0f} vs {tmpfs.throughput:.0f} req/s"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
