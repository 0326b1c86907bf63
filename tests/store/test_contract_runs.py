"""Store contract: creating, reading and listing runs, and idempotent submission."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.errors import Conflict, QuotaExceeded
from gateway.model import NamespaceUsage, RunState, Transition
from gateway.store import NewRun, Store
from tests.store.factories import NOW, SPEC, Ledger, at, new_run

S = RunState


async def test_created_run_reads_back_as_written(store: Store) -> None:
    """Every field given at creation comes back from get_run, with UTC-aware times."""
    run, created = await store.create_run(new_run(key="k1", next_poll_at=at(30)), NOW)
    got = await store.get_run("team-a", run.id)
    assert created
    assert got == run
    assert (got.namespace, got.state, got.workspace) == ("team-a", S.SUBMITTING, "adb-123")
    assert got.spec == SPEC
    assert got.labels == {"team": "a"}
    assert got.idempotency_key == "k1"
    assert got.callback_url == "https://scheduler.example/hook"
    assert got.databricks_host == "adb-123.4.azuredatabricks.net"
    assert got.state_message == "accepted"
    assert got.created_at == got.updated_at == NOW
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.next_poll_at == at(30)
    assert (got.databricks_run_id, got.attempts, got.cancel_requested) == (None, 0, False)


async def test_identity_choice_reads_back(store: Store) -> None:
    """The ServiceAccount or Secret a request chose is kept with the run; none reads as {}."""
    chosen = dataclasses.replace(new_run(), identity_ref={"service_account": "etl"})
    run, _ = await store.create_run(chosen, NOW)
    plain, _ = await store.create_run(new_run(), NOW)
    got = await store.get_run("team-a", run.id)
    assert got is not None
    assert got.identity_ref == {"service_account": "etl"}
    assert plain.identity_ref == {}


async def test_principal_reads_back(store: Store) -> None:
    """Whom Databricks saw create the run is kept with it; a run without one reads as {}."""
    record = {"kind": "oauth-m2m", "host": "https://w", "client_id": "0c2f...def0"}
    run, _ = await store.create_run(dataclasses.replace(new_run(), principal=record), NOW)
    plain, _ = await store.create_run(new_run(), NOW)
    got = await store.get_run("team-a", run.id)
    assert got is not None
    assert got.principal == record
    assert plain.principal == {}


async def test_new_run_has_its_first_history_entry(store: Store) -> None:
    """A new run's history holds one entry: from nothing to its initial state, at creation."""
    run, _ = await store.create_run(new_run(state=S.QUEUED), NOW)
    got = await store.get_run("team-a", run.id, with_history=True)
    assert got is not None
    assert got.history == (Transition(None, S.QUEUED, NOW, "accepted"),)


async def test_history_is_loaded_only_when_asked(store: Store) -> None:
    """Records come without history unless with_history is set."""
    run, _ = await store.create_run(new_run(), NOW)
    got = await store.get_run("team-a", run.id)
    assert run.history == ()
    assert got is not None
    assert got.history == ()


def test_a_run_cannot_start_past_submitting() -> None:
    """NewRun refuses any initial state other than QUEUED or SUBMITTING."""
    with pytest.raises(ValueError, match="QUEUED or SUBMITTING"):
        new_run(state=S.RUNNING)


async def test_ids_are_positive_and_increasing(store: Store) -> None:
    """Each new run gets a larger positive id than the one before."""
    ids = [(await store.create_run(new_run(), NOW))[0].id for _ in range(5)]
    assert ids[0] > 0
    assert ids == sorted(set(ids))


async def test_times_in_other_zones_are_the_same_instant(store: Store) -> None:
    """A time given in another zone is stored as that instant and returned in UTC."""
    tokyo = NOW.astimezone(timezone(timedelta(hours=9)))
    run, _ = await store.create_run(new_run(), tokyo)
    assert run.created_at == NOW
    assert run.created_at.tzinfo == UTC


async def test_naive_times_are_refused(store: Store) -> None:
    """A naive datetime raises ValueError and writes nothing."""
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.create_run(new_run(), datetime(2026, 1, 1))
    assert await store.count_runs("team-a") == 0


async def test_get_run_is_scoped_to_its_namespace(store: Store) -> None:
    """Another namespace cannot see a run; the poller's get_run_by_id can."""
    run, _ = await store.create_run(new_run("team-a"), NOW)
    assert await store.get_run("team-b", run.id) is None
    assert await store.get_run_by_id(run.id) == run


async def test_unknown_ids_are_none(store: Store) -> None:
    """Reading an id that was never issued gives None."""
    assert await store.get_run("team-a", 424242) is None
    assert await store.get_run_by_id(424242, with_history=True) is None


async def test_same_key_same_body_returns_the_first_run(store: Store) -> None:
    """A retried submission (same key, same body) returns the existing run, created False."""
    first, created_first = await store.create_run(new_run(key="retry-me"), NOW)
    again, created_again = await store.create_run(new_run(key="retry-me"), at(5))
    assert (created_first, created_again) == (True, False)
    assert again == first
    assert await store.count_runs("team-a") == 1


async def test_same_key_other_body_is_a_conflict(store: Store) -> None:
    """Reusing a key with a different body raises Conflict naming the key, and adds nothing."""
    await store.create_run(new_run(key="once"), NOW)
    with pytest.raises(Conflict, match="once"):
        await store.create_run(new_run(key="once", spec={"run_name": "other"}), NOW)
    assert await store.count_runs("team-a") == 1


async def test_keys_are_per_namespace(store: Store) -> None:
    """The same key in two namespaces makes two independent runs."""
    a, _ = await store.create_run(new_run("team-a", key="shared"), NOW)
    b, created = await store.create_run(new_run("team-b", key="shared"), NOW)
    assert created
    assert a.id != b.id


async def test_without_a_key_every_request_is_a_new_run(store: Store) -> None:
    """Identical bodies without an idempotency key create separate runs."""
    await store.create_run(new_run(), NOW)
    await store.create_run(new_run(), NOW)
    assert await store.count_runs("team-a") == 2


async def test_concurrent_submissions_with_one_key_create_one_run(store: Store) -> None:
    """200 concurrent create_run calls sharing a key create exactly one row."""
    results = await asyncio.gather(
        *(store.create_run(new_run(key="burst"), NOW) for _ in range(200))
    )
    assert len({run.id for run, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert await store.count_runs("team-a") == 1


async def test_concurrent_submissions_from_two_connections_create_one_run(
    ledger: Ledger,
) -> None:
    """Two stores on one ledger (two replicas or processes) racing on a key create one row."""
    one, two = await ledger.open(), await ledger.open()
    results = await asyncio.gather(
        *(s.create_run(new_run(key="race"), NOW) for s in [one, two] * 20)
    )
    assert len({run.id for run, _ in results}) == 1
    assert await one.count_runs("team-a") == 1


async def test_admit_chooses_the_initial_state_from_usage(store: Store) -> None:
    """admit sees the namespace's active and queued counts and picks the initial state."""
    await store.create_run(new_run(state=S.SUBMITTING), NOW)
    await store.create_run(new_run(state=S.QUEUED), NOW)
    await store.create_run(new_run("team-b", state=S.SUBMITTING), NOW)
    seen: list[NamespaceUsage] = []

    def admit(usage: NamespaceUsage) -> RunState:
        seen.append(usage)
        return S.QUEUED if usage.active >= 1 else S.SUBMITTING

    run, _ = await store.create_run(new_run(state=S.SUBMITTING), NOW, admit=admit)
    assert run.state == S.QUEUED
    assert seen == [
        NamespaceUsage(
            "team-a", active=1, queued=1, workspace_active=2, recent_submissions=(NOW, NOW)
        )
    ]


async def test_admit_can_refuse_and_nothing_is_written(store: Store) -> None:
    """An exception from admit reaches the caller unchanged and leaves no run behind."""

    def refuse(usage: NamespaceUsage) -> RunState:
        raise QuotaExceeded("queue full", namespace=usage.namespace, retry_after=30)

    with pytest.raises(QuotaExceeded):
        await store.create_run(new_run(key="k"), NOW, admit=refuse)
    assert await store.count_runs("team-a") == 0
    assert (await store.create_run(new_run(key="k"), NOW))[1]


async def test_admit_is_not_asked_about_a_retry(store: Store) -> None:
    """A replay of an accepted request returns its run even when admission would refuse now."""
    first, _ = await store.create_run(new_run(key="k"), NOW)

    def refuse(usage: NamespaceUsage) -> RunState:
        raise AssertionError("admission consulted for a replay")

    assert await store.create_run(new_run(key="k"), NOW, admit=refuse) == (first, False)


async def test_admit_cannot_start_a_run_past_submitting(store: Store) -> None:
    """An admission rule returning another state is a bug: ValueError, nothing written."""
    with pytest.raises(ValueError, match="QUEUED or SUBMITTING"):
        await store.create_run(new_run(), NOW, admit=lambda usage: S.RUNNING)
    assert await store.count_runs("team-a") == 0


async def test_list_pages_newest_first(store: Store) -> None:
    """list_runs pages through a namespace newest first, using the last id as the cursor."""
    ids = [(await store.create_run(new_run(), NOW))[0].id for _ in range(5)]
    pages, before = [], None
    while page := await store.list_runs("team-a", limit=2, before_id=before):
        pages.append([run.id for run in page])
        before = page[-1].id
    assert pages == [ids[:2:-1], ids[2:0:-1], ids[:1]]


async def test_list_filters_by_state_and_namespace(store: Store) -> None:
    """list_runs returns only the namespace's runs in the given states."""
    queued, _ = await store.create_run(new_run(state=S.QUEUED), NOW)
    await store.create_run(new_run(state=S.SUBMITTING), NOW)
    await store.create_run(new_run("team-b", state=S.QUEUED), NOW)
    assert [r.id for r in await store.list_runs("team-a", states={S.QUEUED})] == [queued.id]
    assert len(await store.list_runs("team-a")) == 2
    assert await store.list_runs("team-c") == []


async def test_list_refuses_a_limit_below_one(store: Store) -> None:
    """A zero or negative limit is a caller bug: ValueError."""
    with pytest.raises(ValueError, match="limit"):
        await store.list_runs("team-a", limit=0)


async def test_spec_and_labels_keep_unicode_and_nesting(store: Store) -> None:
    """Specs round-trip exactly, including nested values and non-ASCII text."""
    spec = {"run_name": "équipe/étl ✓", "tasks": [{"a": [1, 2.5, None, True, {"b": "c"}]}]}
    run, _ = await store.create_run(new_run(spec=spec, labels={"ö": "ü"}), NOW)
    got = await store.get_run("team-a", run.id)
    assert got is not None
    assert (got.spec, got.labels) == (spec, {"ö": "ü"})


async def test_a_spec_that_is_not_json_is_refused(store: Store) -> None:
    """A spec JSON cannot hold raises before anything is written."""
    bad = NewRun("team-a", {"x": float("nan")}, "fp", "adb-123")
    with pytest.raises(ValueError, match="JSON compliant"):
        await store.create_run(bad, NOW)
    assert await store.count_runs("team-a") == 0
