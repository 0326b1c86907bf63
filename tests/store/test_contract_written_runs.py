"""Store contract: the run a write returns is, field for field and type for type, the run
the ledger then holds.

The SQLite store builds what create_run, transition and update_run return from the values it
wrote (no RETURNING read-back, which cost a third of each statement), so a schema default or
a column order it gets wrong would hand callers a run the ledger does not hold. Each case
writes, then compares the answer with a fresh read through another connection.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from gateway.model import RunRecord, RunState
from gateway.store import NewRun, Store
from gateway.store._sqlite_sql import INSERT_RUN, INSERTED_COLUMNS, UPDATE_RUN, UPDATED_COLUMNS
from tests.store.factories import NOW, SPEC, Ledger, at, new_run

S = RunState


def fields_of(run: RunRecord) -> dict[str, tuple[type, Any]]:
    """Every field but the history (a write returns none), with its type; the spec as the
    plain dict it reads as."""
    found: dict[str, tuple[type, Any]] = {}
    for field in dataclasses.fields(run):
        if field.name == "history":
            continue
        value = getattr(run, field.name)
        if field.name == "spec":
            value = dict(value)
        found[field.name] = (type(value), value)
    return found


async def held(ledger: Ledger, run: RunRecord) -> RunRecord:
    reader = await ledger.open()
    found = await reader.get_run(run.namespace, run.id)
    assert found is not None
    return found


async def assert_held(ledger: Ledger, run: RunRecord | None) -> RunRecord:
    assert run is not None
    assert fields_of(run) == fields_of(await held(ledger, run))
    return run


def bare(namespace: str = "team-b") -> NewRun:
    """A run with nothing optional set: the schema's defaults fill the rest."""
    return NewRun(
        namespace=namespace, spec={"run_name": "x"}, request_fingerprint="f", workspace="w"
    )


async def test_a_new_run_is_returned_as_written(store: Store, ledger: Ledger) -> None:
    full = dataclasses.replace(
        new_run(key="k-1", next_poll_at=at(5), identity_ref={"serviceAccount": "etl"}),
        principal={"kind": "service_principal", "application_id": "app-1"},
    )
    for new in (full, bare(), new_run(state=S.QUEUED, labels={"b": "2", "a": "1"})):
        run, created = await store.create_run(new, NOW)
        assert created
        await assert_held(ledger, run)


async def test_a_run_admission_chose_is_returned_as_written(store: Store, ledger: Ledger) -> None:
    def queue(_usage: object) -> RunState:
        return S.QUEUED

    run, _ = await store.create_run(new_run(key="k-q"), NOW, admit=queue)
    assert (await assert_held(ledger, run)).state is S.QUEUED


async def test_a_replayed_run_is_the_one_held(store: Store, ledger: Ledger) -> None:
    first, _ = await store.create_run(new_run(key="k-2"), NOW)
    again, created = await store.create_run(new_run(key="k-2"), at(1))
    assert not created
    assert fields_of(await assert_held(ledger, again)) == fields_of(first)


async def test_moved_runs_are_returned_as_written(store: Store, ledger: Ledger) -> None:
    run, _ = await store.create_run(new_run(next_poll_at=at(5)), NOW)
    pending = await store.transition(
        run.id,
        S.PENDING,
        expected={S.SUBMITTING},
        now=at(1),
        message="submitted",
        databricks_run_id=2**53 + 1,
        databricks_host="adb-9.azuredatabricks.net",
        run_page_url="https://adb-9/#job/1/run/9",
        next_poll_at=at(6),
    )
    await assert_held(ledger, pending)
    # Nothing given: the fields keep what the row held.
    running = await store.transition(run.id, S.RUNNING, expected={S.PENDING}, now=at(2))
    assert (await assert_held(ledger, running)).databricks_run_id == 2**53 + 1
    # A terminal state drops the next poll; the outbox row rides along.
    done = await store.transition(
        run.id,
        S.SUCCEEDED,
        expected={S.RUNNING},
        now=at(3),
        message="done",
        outbox_event={"type": "run.completed", "data": {"id": run.id}},
    )
    assert (await assert_held(ledger, done)).next_poll_at is None


async def test_a_move_to_the_same_state_is_returned_as_written(
    store: Store, ledger: Ledger
) -> None:
    run, _ = await store.create_run(bare(), NOW)
    same = await store.transition(
        run.id, S.SUBMITTING, expected={S.SUBMITTING}, now=at(1), message="again"
    )
    assert (await assert_held(ledger, same)).state_message == "again"


async def test_updated_runs_are_returned_as_written(store: Store, ledger: Ledger) -> None:
    run, _ = await store.create_run(new_run(next_poll_at=at(5)), NOW)
    cases: list[dict[str, Any]] = [
        {"now": at(1), "next_poll_at": at(9), "add_attempts": 1},
        {"attempts": 7, "state_message": "throttled", "run_page_url": "https://x/run"},
        {},
    ]
    for change in cases:
        await assert_held(ledger, await store.update_run(run.id, **change))


async def test_written_times_keep_their_microseconds(store: Store, ledger: Ledger) -> None:
    moment = datetime.fromisoformat("2026-01-01T12:00:00.123457+00:00")
    run, _ = await store.create_run(new_run(next_poll_at=moment), moment)
    assert (await assert_held(ledger, run)).created_at == moment
    assert run.spec == SPEC


def _named(sql: str, start: str, end: str) -> list[str]:
    inner = sql.split(start, 1)[1].split(end, 1)[0]
    return [part.split("=")[0].strip() for part in inner.split(",")]


def test_the_sqlite_column_lists_are_the_statements_order() -> None:
    """INSERTED_COLUMNS and UPDATED_COLUMNS name the values the SQLite statements bind, in the
    order they bind them: the returned run is built from them."""
    assert _named(INSERT_RUN, "INSERT INTO runs (", ")") == [*INSERTED_COLUMNS, "started_at"]
    assert _named(UPDATE_RUN, "SET ", "WHERE") == list(UPDATED_COLUMNS)
