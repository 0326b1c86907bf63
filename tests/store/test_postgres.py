"""The PostgreSQL ledger shared by several stores, as replicas share it: migrations, the
installation id, quotas, idempotency and outbox claims hold across them, and a lost
connection costs one answer, never a run."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import asyncpg
import pytest
from blockbuster import BlockBuster

from gateway.errors import QuotaExceeded, StoreError
from gateway.model import NamespaceUsage, RunState
from gateway.store.errors import StoreUnavailable
from gateway.store.postgres import PostgresStore
from tests.store.factories import NOW, at, new_run
from tests.store.pg import allow_asyncpg_config_reads, pg_store, terminate_connections

pytestmark = pytest.mark.postgres

S = RunState


async def _opened(dsn: str, count: int) -> list[PostgresStore]:
    stores = [pg_store(dsn) for _ in range(count)]
    await asyncio.gather(*(store.open() for store in stores))
    return stores


async def _close(stores: list[PostgresStore]) -> None:
    for store in stores:
        await store.close()


async def test_replicas_starting_together_migrate_once(pg_dsn: str) -> None:
    """Six stores opening one fresh schema at once: each migration applied once, one id."""
    stores = await _opened(pg_dsn, 6)
    try:
        assert len({store.installation_id for store in stores}) == 1
        conn = await asyncpg.connect(pg_dsn)
        try:
            rows = await conn.fetch(
                "SELECT version, count(*) AS n FROM schema_migrations GROUP BY 1 ORDER BY 1"
            )
            ids = await conn.fetchval("SELECT count(*) FROM meta WHERE key = 'installation_id'")
        finally:
            await conn.close()
        assert [(row["version"], row["n"]) for row in rows] == [(1, 1), (2, 1), (3, 1)]
        assert ids == 1
    finally:
        await _close(stores)


async def test_the_installation_id_is_the_ledgers_not_the_processs(pg_dsn: str) -> None:
    """Two stores, opened one after the other, and a third after both closed: one id."""
    first, second = await _opened(pg_dsn, 1), await _opened(pg_dsn, 1)
    seen = {first[0].installation_id, second[0].installation_id}
    await _close(first + second)
    again = await _opened(pg_dsn, 1)
    seen.add(again[0].installation_id)
    await _close(again)
    assert len(seen) == 1
    assert len(seen.pop()) == 32


def _capped(limit: int, *, workspace: bool = False) -> object:
    def admit(usage: NamespaceUsage) -> RunState:
        used = usage.workspace_active if workspace else usage.active
        if used >= limit:
            raise QuotaExceeded("full", namespace=usage.namespace, retry_after=1)
        return S.SUBMITTING

    return admit


async def _admitted(stores: list[PostgresStore], runs: list[object], admit: object) -> int:
    async def one(store: PostgresStore, new: object) -> bool:
        try:
            await store.create_run(new, NOW, admit=admit)  # type: ignore[arg-type]
        except QuotaExceeded:
            return False
        return True

    pairs = zip(itertools.cycle(stores), runs, strict=False)
    return sum(await asyncio.gather(*(one(store, new) for store, new in pairs)))


async def test_a_namespace_limit_holds_across_stores(pg_dsn: str) -> None:
    """60 concurrent admissions on two stores with a limit of 7: exactly 7 runs admitted."""
    stores = await _opened(pg_dsn, 2)
    try:
        admitted = await _admitted(stores, [new_run() for _ in range(60)], _capped(7))
        assert admitted == 7
        assert await stores[0].count_runs("team-a") == 7
    finally:
        await _close(stores)


async def test_the_workspace_cap_holds_across_namespaces_and_stores(pg_dsn: str) -> None:
    """Four namespaces on one workspace, two stores, a workspace cap of 5: 5 runs in all."""
    stores = await _opened(pg_dsn, 2)
    try:
        runs = [new_run(f"team-{i % 4}") for i in range(48)]
        assert await _admitted(stores, runs, _capped(5, workspace=True)) == 5
        counts = await stores[1].active_counts()
        assert sum(counts.values()) == 5
    finally:
        await _close(stores)


async def test_two_first_requests_with_one_key_make_one_run(pg_dsn: str) -> None:
    """Twenty creates with one Idempotency-Key on two stores: one run, created once."""
    stores = await _opened(pg_dsn, 2)
    try:
        results = await asyncio.gather(
            *(s.create_run(new_run(key="k-1"), NOW) for s in stores * 10)
        )
        assert len({run.id for run, _ in results}) == 1
        assert sum(created for _, created in results) == 1
    finally:
        await _close(stores)


async def test_outbox_claims_on_two_stores_never_share_a_row(pg_dsn: str) -> None:
    """Claims racing on two stores take every due row exactly once between them."""
    stores = await _opened(pg_dsn, 2)
    try:
        for _ in range(40):
            run, _ = await stores[0].create_run(new_run(), NOW)
            await stores[0].transition(
                run.id, S.PENDING, expected={S.SUBMITTING}, now=NOW,
                outbox_event={"type": "run.pending"},
            )  # fmt: skip
        claimed: dict[str, list[int]] = {}

        async def drain(store: PostgresStore, owner: str) -> None:
            mine = claimed.setdefault(owner, [])
            while batch := await store.claim_outbox(at(1), owner=owner, limit=3, lease_seconds=60):
                mine += [entry.id for entry in batch]
                await asyncio.sleep(0)

        await asyncio.gather(
            *(drain(store, f"replica-{i % 2}") for i, store in enumerate(stores * 2))
        )
        every = [entry_id for ids in claimed.values() for entry_id in ids]
        assert len(every) == len(set(every)) == 40
        assert all(claimed.values()), "both stores claimed some rows"
    finally:
        await _close(stores)


async def test_a_ledger_newer_than_this_lakegate_is_refused(pg_dsn: str) -> None:
    """A schema_migrations row past the shipped migrations: open() says what to do."""
    (store,) = await _opened(pg_dsn, 1)
    await store.close()
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'future')")
    finally:
        await conn.close()
    with pytest.raises(StoreError, match="newer than this lakegate"):
        await pg_store(pg_dsn).open()


async def test_a_search_path_naming_no_schema_is_refused_saying_so(pg_dsn: str) -> None:
    """A DSN whose search_path names a schema that does not exist: open() names the fix."""
    missing = pg_dsn.replace("search_path=lgtest_", "search_path=missing_")
    with pytest.raises(StoreError, match="no schema to live in"):
        await pg_store(missing).open()


async def test_a_dsn_asyncpg_refuses_is_not_called_an_outage(blockbuster: BlockBuster) -> None:
    """sslmode=bogus: a StoreError naming it, without a retry_after (waiting will not help)."""
    allow_asyncpg_config_reads(blockbuster)
    with pytest.raises(StoreError, match="sslmode") as raised:
        await pg_store("postgresql://postgres@127.0.0.1:9/test?sslmode=bogus").open()
    assert not isinstance(raised.value, StoreUnavailable)


async def test_a_server_that_is_not_there_is_unavailable_not_a_crash(
    blockbuster: BlockBuster,
) -> None:
    """Nothing listens on the port: open() raises StoreUnavailable with a retry_after."""
    allow_asyncpg_config_reads(blockbuster)
    store = pg_store("postgresql://postgres@127.0.0.1:9/test")
    with pytest.raises(StoreUnavailable) as raised:
        await store.open()
    assert raised.value.retry_after > 0
    assert raised.value.status == 503


async def test_killed_connections_cost_one_answer_and_heal(pg_dsn: str) -> None:
    """Reads retry on a fresh connection; a write fails once as unavailable, then works."""
    (store,) = await _opened(pg_dsn, 1)
    try:
        run, _ = await store.create_run(new_run(), NOW)
        assert await terminate_connections(pg_dsn) >= 1
        assert await store.get_run("team-a", run.id) is not None
        await terminate_connections(pg_dsn)
        await asyncio.sleep(0.05)
        done = 0
        for _ in range(3):
            with contextlib.suppress(StoreUnavailable):
                await store.update_run(run.id, add_attempts=1)
                done += 1
        found = await store.get_run("team-a", run.id)
        assert found is not None
        assert found.attempts == done >= 2
        await store.ping()
    finally:
        await store.close()


async def test_no_accepted_run_is_lost_or_doubled_while_connections_die(pg_dsn: str) -> None:
    """Keyed submissions on two stores, retried while connections are killed under them."""
    stores = await _opened(pg_dsn, 2)
    accepted: dict[str, int] = {}
    failures = 0

    async def submit(index: int) -> None:
        nonlocal failures
        key = f"key-{index}"
        while True:
            try:
                run, _ = await stores[index % 2].create_run(new_run(key=key), NOW)
            except StoreUnavailable:
                failures += 1
                await asyncio.sleep(0.01)
                continue
            accepted[key] = run.id
            return

    async def killer() -> None:
        for _ in range(8):
            await asyncio.sleep(0.03)
            await terminate_connections(pg_dsn)

    try:
        await asyncio.gather(killer(), *(submit(i) for i in range(150)))
        assert len(accepted) == 150
        for key, run_id in accepted.items():
            found = await stores[0].get_run_by_idempotency_key("team-a", key)
            assert found is not None
            assert found.id == run_id
        assert await stores[1].count_runs("team-a") == 150
        print(f"submissions refused while connections died: {failures}")
    finally:
        await _close(stores)
