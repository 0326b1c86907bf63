"""Admission: its cost per submit at 100 namespaces, and fairness under a workspace cap.

    .venv/bin/python tests/bench/bench_admission.py [--namespaces 100] [--submits 2000]
        [--rounds 3] [--tmpfs] [--reads-only]
    LAKEGATE_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:5432/test  (adds PostgreSQL)

Cost: a SQLite ledger holds, for each of ``--namespaces`` namespaces, 10 active runs, 20
queued ones and 50 that ended; then ``--submits`` runs are created one after the other across
the namespaces (each variant on a fresh copy of that ledger, in ``--rounds`` rounds taking
turns, the median printed), once without admission and twice with it (``admission.decide``
called inside ``create_run``'s transaction on the usage the ledger reads there): reading
every usage figure, as before the admit seam, then only what a namespace without a run-hours
budget needs (no day's run time). The difference per submit is what admission costs. With
``LAKEGATE_TEST_POSTGRES_DSN`` the same is measured on a fresh PostgreSQL schema, the
variants taking turns submit by submit. One
admission pass is timed as well: its reads when every namespace has room (the counts, every
head, ``promotions``), and a real ``Admitter.tick`` when every namespace is at its limit
(the counts only: no head is read).

Reads: what ``create_run`` does for admission, timed alone (the usage read and ``decide``,
on the ledger's own statements, no insert): a namespace with 3,000 active runs and 5,000
created in the last hour (one every 0.72 s, each ended after a minute), with every figure
but the run time read and the rate window handed to ``rate_wait`` (as before issue 16), and
with what ``usage_needs`` names (the bucket checked in SQL, the mean run time only for a
refusal, no workspace count without a cap), under three accepting policies (the rows the
bucket reads depend on them) and one refusing; the median of 5 rounds of 300 admissions.

Fairness: on a fresh ledger one namespace queues 2,000 runs, then nine others queue 50 each,
all at t=0, under a workspace cap of 20. Simulated time: every admitted run takes exactly one
second, and each pass admits what fits, through the real ledger and ``promotions``. Printed:
the nine's wait from submission to admission (p50, p99, max), and each namespace's share of
the active slots while all ten still had runs waiting, against the fair share (equal weights).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.errors import QuotaExceeded
from gateway.metrics import Metrics
from gateway.model import NamespaceUsage, RunState, request_fingerprint
from gateway.runs.admission import Waiting, admissible, decide, promotions, usage_needs
from gateway.runs.caps import WorkspaceCaps
from gateway.runs.ledger import RunLedger
from gateway.runs.queue import HEADS_PER_NAMESPACE, Admitter
from gateway.settings import QuotaSettings, TenantsSettings
from gateway.store._sqlite_quota import admitted
from gateway.store._sqlite_sql import to_us
from gateway.store.base import EVERY_USAGE, Admission, NewRun, Store, UsageNeeds
from gateway.store.sqlite import SqliteStore

# The repository root, for tests.store.pg (the PostgreSQL schema helpers).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SPEC = {"run_name": "bench", "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/x"}}]}
TMPFS = "/dev/shm"  # noqa: S108 - a RAM-backed file system on purpose, not a temp file
T0 = datetime(2026, 1, 1, tzinfo=UTC)
QUOTAS = QuotaSettings(max_active_runs=10_000, max_queued_runs=10_000, burst=1000)
S = RunState


def new(namespace: str, state: RunState = S.SUBMITTING) -> NewRun:
    return NewRun(
        namespace=namespace,
        spec=SPEC,
        request_fingerprint=request_fingerprint(SPEC),
        workspace="ws",
        state=state,
    )


async def _populate(store: Store, namespaces: list[str]) -> None:
    for ns in namespaces:
        for i in range(80):
            state = S.QUEUED if 10 <= i < 30 else S.SUBMITTING
            run, _ = await store.create_run(new(ns, state), T0 - timedelta(hours=2))
            if i >= 30:
                await store.transition(run.id, S.CANCELED, expected={S.SUBMITTING}, now=T0)


async def _submits(
    store: SqliteStore,
    namespaces: list[str],
    count: int,
    admit: bool,
    needs: UsageNeeds = EVERY_USAGE,
) -> float:
    now = T0 + timedelta(hours=1)

    def rule(usage: NamespaceUsage) -> Admission:
        return decide(usage, QUOTAS, workspace_cap=None, now=now)

    started = time.perf_counter()
    for i in range(count):
        ns = namespaces[i % len(namespaces)]
        await store.create_run(new(ns), now, admit=rule if admit else None, needs=needs)
    return (time.perf_counter() - started) / count


async def _variant(
    seed: Path,
    folder: Path,
    namespaces: list[str],
    count: int,
    admit: bool,
    needs: UsageNeeds = EVERY_USAGE,
) -> float:
    """Seconds per submit on a fresh copy of the populated ledger ``seed``."""
    path = folder / "variant.db"
    shutil.copyfile(seed, path)
    store = SqliteStore(path)
    await store.open()
    try:
        return await _submits(store, namespaces, count, admit, needs)
    finally:
        await store.close()
        path.unlink()


async def cost(args: argparse.Namespace, folder: Path) -> None:
    namespaces = [f"team-{i:03d}" for i in range(args.namespaces)]
    seed = folder / "cost.db"
    store = SqliteStore(seed)
    await store.open()
    try:
        await _populate(store, namespaces)
        heads, one_pass = await _pass_reads(store)
        idle_pass = await _idle_pass(store)
    finally:
        await store.close()
    # Each variant on a fresh copy of one ledger, in rounds taking turns, the median kept: a
    # variant run after another would find the other's runs in the ledger and read more.
    # "Before the seam" reads every usage figure, as every submission did; QUOTAS has no
    # run-hours budget, so what admission needs of the usage leaves the day's run time out.
    variants: dict[str, tuple[bool, UsageNeeds]] = {
        "without admission": (False, EVERY_USAGE),
        "with admission, every figure read (before the seam)": (True, EVERY_USAGE),
        "with admission, no budget: run time not read (after)": (True, usage_needs(QUOTAS)),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (admit, needs) in variants.items():
            seconds[name].append(
                await _variant(seed, folder, namespaces, args.submits, admit, needs)
            )
    per = {name: statistics.median(values) for name, values in seconds.items()}
    plain, before, after = per.values()
    print(f"admission cost at {args.namespaces} namespaces ({args.submits} submits per variant,"
          f" median of {args.rounds} rounds)")  # fmt: skip
    for name, value in per.items():
        print(f"  create_run {name:<55} {value * 1e6:8.0f} us/submit")
    print(f"  admission's share, before  {(before - plain) * 1e6:8.0f} us/submit")
    print(f"  admission's share, after   {(after - plain) * 1e6:8.0f} us/submit"
          f"  ({(before - after) * 1e6:.0f} us less per submit)")  # fmt: skip
    print(f"  one queue pass, all have room ({heads} heads read)  {one_pass * 1e3:8.1f} ms")
    print(f"  one queue pass, all full (counts only)       {idle_pass * 1e3:8.1f} ms")


async def pg_cost(args: argparse.Namespace) -> None:
    """The same before/after on PostgreSQL: one fresh schema, the variants taking turns submit
    by submit (a schema cannot be copied cheaply), each call timed on its own."""
    from tests.store.pg import fresh_schema, pg_store

    namespaces = [f"team-{i:03d}" for i in range(args.namespaces)]
    now = T0 + timedelta(hours=1)

    def rule(usage: NamespaceUsage) -> Admission:
        return decide(usage, QUOTAS, workspace_cap=None, now=now)

    variants = [("without admission", None, EVERY_USAGE),
                ("with admission, every figure read (before the seam)", rule, EVERY_USAGE),
                ("with admission, no budget: run time not read (after)", rule,
                 usage_needs(QUOTAS))]  # fmt: skip
    spent = [0.0] * len(variants)
    async with fresh_schema() as dsn:
        store = pg_store(dsn)
        await store.open()
        try:
            await _populate(store, namespaces)
            for i in range(args.submits * len(variants)):
                _, admit, needs = variants[i % len(variants)]
                ns = namespaces[(i // len(variants)) % len(namespaces)]
                started = time.perf_counter()
                await store.create_run(new(ns), now, admit=admit, needs=needs)
                spent[i % len(variants)] += time.perf_counter() - started
        finally:
            await store.close()
    per = [value / args.submits for value in spent]
    print(f"admission cost on PostgreSQL at {args.namespaces} namespaces ({args.submits} submits"
          " per variant, taking turns)")  # fmt: skip
    for (name, _, _), value in zip(variants, per, strict=True):
        print(f"  create_run {name:<55} {value * 1e6:8.0f} us/submit")
    print(f"  admission's share, before  {(per[1] - per[0]) * 1e6:8.0f} us/submit")
    print(f"  admission's share, after   {(per[2] - per[0]) * 1e6:8.0f} us/submit"
          f"  ({(per[1] - per[2]) * 1e6:.0f} us less per submit)")  # fmt: skip


async def _pass_reads(store: SqliteStore) -> tuple[int, float]:
    """What a pass reads and decides when every namespace has room (admitting aside)."""
    room = QuotaSettings(max_active_runs=10_000)
    started = time.perf_counter()
    queued, active = await store.queue_counts()
    candidates = admissible(queued, active, lambda _ns: room, {})
    heads = await store.queued_heads_of(candidates, HEADS_PER_NAMESPACE)
    promotions(
        [Waiting(r.namespace, r.workspace, r.id) for r in heads], active, lambda _ns: room, {}
    )
    return len(heads), time.perf_counter() - started


async def _idle_pass(store: SqliteStore) -> float:
    """A real Admitter pass while every namespace is at max_active_runs (10 active each)."""
    tenants = TenantsSettings.model_validate({"defaults": {"quotas": {"max_active_runs": 10}}})
    ledger = RunLedger(store, Metrics(), clock=lambda: T0)
    admitter = Admitter(
        store=store, ledger=ledger, tenants=lambda: tenants,
        caps=WorkspaceCaps(dict), metrics=Metrics(), clock=lambda: T0,
    )  # fmt: skip
    started = time.perf_counter()
    assert await admitter.tick() == 0
    return time.perf_counter() - started


async def _fair_pass(store: SqliteStore, now: datetime, ending: dict[int, datetime]) -> None:
    for run_id, end in list(ending.items()):
        if end <= now:
            await store.transition(run_id, S.SUCCEEDED, expected={S.SUBMITTING}, now=now)
            del ending[run_id]
    heads = await store.queued_heads(HEADS_PER_NAMESPACE)
    chosen = promotions(
        [Waiting(r.namespace, r.workspace, r.id) for r in heads],
        await store.active_counts(),
        lambda _ns: QuotaSettings(max_active_runs=20),
        {"ws": 20},
    )
    for pick in chosen:
        await store.transition(pick.run_id, S.SUBMITTING, expected={S.QUEUED}, now=now)
        ending[pick.run_id] = now + timedelta(seconds=1)


async def fairness(folder: Path) -> None:
    store = SqliteStore(folder / "fair.db")
    await store.open()
    small = [f"small-{i}" for i in range(9)]
    created: dict[int, str] = {}
    try:
        for ns, count in [("big", 2000)] + [(ns, 50) for ns in small]:
            for _ in range(count):
                run, _ = await store.create_run(new(ns, S.QUEUED), T0)
                created[run.id] = ns
        ending: dict[int, datetime] = {}
        held: dict[str, int] = {}
        contended = 0
        now = T0
        while True:
            await _fair_pass(store, now, ending)
            queued = {ns for ns, _ in await store.counts_by_namespace_state({S.QUEUED})}
            if not queued and not ending:
                break
            if len(queued) == 10:
                contended += 1
                for (_, ns), n in (await store.active_counts()).items():
                    held[ns] = held.get(ns, 0) + n
            now += timedelta(seconds=1)
        waits = []
        for ns in small:
            for run in await store.list_runs(ns, limit=100):
                full = await store.get_run(ns, run.id, with_history=True)
                assert full is not None
                admitted = next(h.at for h in full.history if h.to_state is S.SUBMITTING)
                waits.append((admitted - T0).total_seconds())
    finally:
        await store.close()
    waits.sort()
    p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
    print("fairness: big queues 2,000, nine small queue 50 each, workspace cap 20, 1 s runs")
    print(
        f"  nine small: wait p50 {statistics.median(waits):.0f} s, p99 {p99:.0f} s,"
        f" max {waits[-1]:.0f} s  (big alone would take {2000 // 20} s)"
    )
    total = sum(held.values())
    print(f"  share of the active slots over {contended} contended seconds (fair: 10.0%):")
    for ns in ["big", *small]:
        print(f"    {ns:8s} {100 * held.get(ns, 0) / max(1, total):5.1f}%")


_READ_POLICIES = {
    "generous (600/min, burst 1000)": QuotaSettings(
        max_active_runs=10_000, submissions_per_minute=600, burst=1000
    ),
    "default rate (120/min, burst 20)": QuotaSettings(max_active_runs=10_000),
    "near its rate (90/min, burst 20)": QuotaSettings(
        max_active_runs=10_000, submissions_per_minute=90
    ),
    "refused at max_active_runs 3,000": QuotaSettings(max_active_runs=3_000, over_active="refuse"),
}


async def _busy_ledger(path: Path, now: datetime) -> None:
    """3,000 active runs of team-a (created two hours ago) and 5,000 created in the last hour,
    ended a minute later, written straight into a migrated ledger (only the reads are timed)."""
    store = SqliteStore(path)
    await store.open()
    await store.close()
    at, rows = to_us(now), []
    for i in range(3_000):
        rows.append(("RUNNING", at - 7_200_000_000 - i * 1_000_000))
    for i in range(5_000):
        rows.append(("SUCCEEDED", at - 1_000_000 - i * 720_000))
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO runs (namespace, state, spec, request_fingerprint, workspace,"
            " created_at, updated_at) VALUES ('team-a', ?, '{}', 'f', 'ws', ?, ? + 60000000)",
            [(state, created, created) for state, created in rows],
        )
    conn.close()


def _time_admissions(
    conn: sqlite3.Connection, quotas: QuotaSettings, now: datetime
) -> dict[str, float]:
    """Microseconds per admission, before and after, the median of 5 rounds of 300."""
    at = to_us(now)

    def rule(usage: NamespaceUsage) -> Admission:
        return decide(usage, quotas, workspace_cap=None, now=now)

    # No workspace cap, as the run service then says (capped=False).
    variants = {"before": UsageNeeds(run_hours=False), "after": usage_needs(quotas, capped=False)}
    rounds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(5):
        for name, needs in variants.items():
            started = time.perf_counter()
            for _ in range(300):
                # A refusal is an admission too: its cost is what is measured.
                with contextlib.suppress(QuotaExceeded):
                    admitted(conn, rule, ("team-a", "ws"), at, needs)
            rounds[name].append((time.perf_counter() - started) / 300 * 1e6)
    return {name: statistics.median(values) for name, values in rounds.items()}


async def reads(folder: Path) -> None:
    now = T0 + timedelta(days=1)
    path = folder / "reads.db"
    await _busy_ledger(path, now)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        print("admission's reads per submit: 3,000 active runs, 5,000 created in the last hour")
        for name, quotas in _READ_POLICIES.items():
            per = _time_admissions(conn, quotas, now)
            print(f"  {name:<34} before {per['before']:7.0f} us   after {per['after']:6.0f} us")
    finally:
        conn.close()


async def main_async(args: argparse.Namespace) -> None:
    root = TMPFS if args.tmpfs else None
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        await reads(Path(tmp))
        if args.reads_only:
            return
        await cost(args, Path(tmp))
        if os.environ.get("LAKEGATE_TEST_POSTGRES_DSN"):
            await pg_cost(args)
        else:
            print("admission cost on PostgreSQL: skipped, LAKEGATE_TEST_POSTGRES_DSN is not set")
        await fairness(Path(tmp))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--submits", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="of the cost variants, in turn")
    parser.add_argument("--tmpfs", action="store_true", help="put the ledger on /dev/shm")
    parser.add_argument("--reads-only", action="store_true", help="time admission's reads only")
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
