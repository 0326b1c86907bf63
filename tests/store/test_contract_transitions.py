"""Store contract: compare-and-set state changes, their history, outbox rows and bookkeeping."""

from __future__ import annotations

import asyncio

import pytest

from gateway.model import IllegalTransition, RunRecord, RunState, Transition
from gateway.store import Reschedule, Store
from tests.store.factories import NOW, at, new_run

S = RunState
DONE = {"type": "run.finished", "data": {"id": 1, "state": "SUCCEEDED", "note": "✓"}}


async def submitted(store: Store) -> RunRecord:
    run, _ = await store.create_run(new_run(next_poll_at=at(10)), NOW)
    return run


async def test_transition_applies_when_the_state_is_expected(store: Store) -> None:
    """A matching CAS moves the state and sets the given fields and updated_at."""
    run = await submitted(store)
    moved = await store.transition(
        run.id,
        S.PENDING,
        expected={S.SUBMITTING},
        now=at(1),
        message="submitted",
        databricks_run_id=455644833,
        databricks_host="adb-9.azuredatabricks.net",
        run_page_url="https://adb-9/#job/1/run/455644833",
        next_poll_at=at(6),
    )
    assert moved is not None
    assert moved == await store.get_run("team-a", run.id)
    assert (moved.state, moved.state_message, moved.databricks_run_id) == (
        S.PENDING,
        "submitted",
        455644833,
    )
    assert moved.databricks_host == "adb-9.azuredatabricks.net"
    assert moved.run_page_url == "https://adb-9/#job/1/run/455644833"
    assert (moved.next_poll_at, moved.updated_at, moved.created_at) == (at(6), at(1), NOW)


async def test_transition_is_refused_when_the_state_moved_on(store: Store) -> None:
    """A CAS whose expected states do not hold returns None and changes nothing."""
    run = await submitted(store)
    assert await store.transition(run.id, S.RUNNING, expected={S.PENDING}, now=at(1)) is None
    after = await store.get_run("team-a", run.id, with_history=True)
    assert after is not None
    assert (after.state, after.updated_at, len(after.history)) == (S.SUBMITTING, NOW, 1)


async def test_transition_of_an_unknown_run_is_none(store: Store) -> None:
    """Moving a run that does not exist returns None."""
    assert await store.transition(999, S.PENDING, expected={S.SUBMITTING}, now=NOW) is None


async def test_illegal_transition_raises_and_writes_nothing(store: Store) -> None:
    """A move the state machine forbids raises IllegalTransition even when the CAS matches."""
    run, _ = await store.create_run(new_run(state=S.QUEUED), NOW)
    with pytest.raises(IllegalTransition):
        await store.transition(run.id, S.RUNNING, expected={S.QUEUED}, now=at(1))
    after = await store.get_run("team-a", run.id, with_history=True)
    assert after is not None
    assert (after.state, len(after.history)) == (S.QUEUED, 1)


async def test_no_transition_leaves_a_terminal_state(store: Store) -> None:
    """Once ended, a run cannot be moved, whatever the caller expects."""
    run = await submitted(store)
    await store.transition(run.id, S.REJECTED, expected={S.SUBMITTING}, now=at(1))
    with pytest.raises(IllegalTransition):
        await store.transition(run.id, S.PENDING, expected={S.REJECTED}, now=at(2))


async def test_history_records_every_transition_in_order(store: Store) -> None:
    """Each state change appends (from, to, at, message) to the run's history."""
    run = await submitted(store)
    await store.transition(run.id, S.PENDING, expected={S.SUBMITTING}, now=at(1), message="a")
    await store.transition(run.id, S.RUNNING, expected={S.PENDING}, now=at(2), message="b")
    await store.transition(run.id, S.SUCCEEDED, expected={S.RUNNING}, now=at(3))
    got = await store.get_run("team-a", run.id, with_history=True)
    assert got is not None
    assert got.history == (
        Transition(None, S.SUBMITTING, NOW, "accepted"),
        Transition(S.SUBMITTING, S.PENDING, at(1), "a"),
        Transition(S.PENDING, S.RUNNING, at(2), "b"),
        Transition(S.RUNNING, S.SUCCEEDED, at(3), ""),
    )


async def test_fields_not_given_are_kept(store: Store) -> None:
    """None for an optional field leaves it as it was; the message is always replaced."""
    run = await submitted(store)
    await store.transition(
        run.id, S.PENDING, expected={S.SUBMITTING}, now=at(1), message="x", databricks_run_id=7
    )
    moved = await store.transition(run.id, S.RUNNING, expected={S.PENDING}, now=at(2))
    assert moved is not None
    assert (moved.databricks_run_id, moved.next_poll_at, moved.state_message) == (7, at(10), "")


async def test_a_terminal_state_is_never_due(store: Store) -> None:
    """Ending a run clears next_poll_at, even if the caller passed one."""
    run = await submitted(store)
    ended = await store.transition(
        run.id, S.FAILED, expected={S.SUBMITTING}, now=at(1), next_poll_at=at(60)
    )
    assert ended is not None
    assert ended.next_poll_at is None
    assert await store.due_runs(at(3600), states={S.FAILED}, limit=10) == []


async def test_outbox_row_is_written_with_the_transition(store: Store) -> None:
    """An outbox event becomes a pending row for the run, stamped with the transition's time."""
    run = await submitted(store)
    await store.transition(
        run.id, S.SUCCEEDED, expected={S.SUBMITTING}, now=at(5), outbox_event=DONE
    )
    [entry] = await store.list_outbox(run_id=run.id)
    assert (entry.run_id, entry.namespace, entry.event_type) == (run.id, "team-a", "run.finished")
    assert entry.payload == DONE
    assert (entry.created_at, entry.next_attempt_at, entry.attempts) == (at(5), at(5), 0)
    assert (entry.delivered_at, entry.dead_at) == (None, None)


async def test_a_refused_transition_writes_no_outbox_row(store: Store) -> None:
    """When the CAS fails, the event is not written either."""
    run = await submitted(store)
    result = await store.transition(
        run.id, S.SUCCEEDED, expected={S.RUNNING}, now=at(5), outbox_event=DONE
    )
    assert result is None
    assert await store.list_outbox(run_id=run.id) == []


async def test_a_payload_that_is_not_json_is_refused_before_anything_changes(
    store: Store,
) -> None:
    """An unserialisable outbox payload raises, and neither state nor history move."""
    run = await submitted(store)
    bad = {"type": "run.finished", "at": object()}
    with pytest.raises(TypeError):
        await store.transition(
            run.id, S.FAILED, expected={S.SUBMITTING}, now=at(1), outbox_event=bad
        )
    after = await store.get_run("team-a", run.id, with_history=True)
    assert after is not None
    assert (after.state, len(after.history)) == (S.SUBMITTING, 1)


@pytest.mark.parametrize("event", [{"data": {}}, {"type": ""}, {"type": 3}])
async def test_an_event_without_a_type_is_refused(store: Store, event: dict[str, object]) -> None:
    """An outbox event needs a non-empty string "type"; without one nothing is written."""
    run = await submitted(store)
    with pytest.raises(ValueError, match="type"):
        await store.transition(
            run.id, S.FAILED, expected={S.SUBMITTING}, now=at(1), outbox_event=event
        )
    assert await store.list_outbox() == []
    assert (await store.get_run_by_id(run.id)) == run


async def test_same_state_updates_fields_without_history_or_event(store: Store) -> None:
    """Moving to the current state updates fields but records no history and no event."""
    run = await submitted(store)
    same = await store.transition(
        run.id, S.SUBMITTING, expected={S.SUBMITTING}, now=at(1), message="retrying",
        next_poll_at=at(20), outbox_event=DONE,
    )  # fmt: skip
    assert same is not None
    assert (same.state, same.state_message, same.next_poll_at) == (S.SUBMITTING, "retrying", at(20))
    got = await store.get_run("team-a", run.id, with_history=True)
    assert got is not None
    assert len(got.history) == 1
    assert await store.list_outbox(run_id=run.id) == []


async def test_update_run_changes_bookkeeping_only(store: Store) -> None:
    """update_run sets poll time, message and URL; state and history stay as they were."""
    run = await submitted(store)
    updated = await store.update_run(
        run.id, now=at(2), next_poll_at=at(30), state_message="Waiting for cluster",
        run_page_url="https://adb/#run/1",
    )  # fmt: skip
    assert updated is not None
    assert (updated.next_poll_at, updated.state_message, updated.run_page_url) == (
        at(30),
        "Waiting for cluster",
        "https://adb/#run/1",
    )
    assert (updated.state, updated.updated_at) == (S.SUBMITTING, at(2))
    got = await store.get_run("team-a", run.id, with_history=True)
    assert got is not None
    assert len(got.history) == 1


async def test_update_run_without_now_keeps_updated_at(store: Store) -> None:
    """Bookkeeping without ``now`` leaves updated_at where the last change put it."""
    run = await submitted(store)
    updated = await store.update_run(run.id, next_poll_at=at(30), add_attempts=1)
    assert updated is not None
    assert (updated.updated_at, updated.next_poll_at, updated.attempts) == (NOW, at(30), 1)


async def test_update_run_sets_then_adds_attempts(store: Store) -> None:
    """attempts sets the counter and add_attempts then adds to it."""
    run = await submitted(store)
    await store.update_run(run.id, now=at(1), add_attempts=3)
    reset = await store.update_run(run.id, now=at(2), attempts=0, add_attempts=1)
    assert reset is not None
    assert reset.attempts == 1


async def test_concurrent_attempt_increments_are_not_lost(store: Store) -> None:
    """Fifty concurrent add_attempts=1 leave the counter at fifty."""
    run = await submitted(store)
    await asyncio.gather(*(store.update_run(run.id, now=at(1), add_attempts=1) for _ in range(50)))
    got = await store.get_run_by_id(run.id)
    assert got is not None
    assert got.attempts == 50


async def test_update_run_of_an_unknown_run_is_none(store: Store) -> None:
    """Bookkeeping on a run that does not exist returns None."""
    assert await store.update_run(999, now=NOW, attempts=1) is None


async def test_update_run_cannot_make_an_ended_run_due(store: Store) -> None:
    """next_poll_at is ignored for a terminal run."""
    run = await submitted(store)
    await store.transition(run.id, S.CANCELED, expected={S.SUBMITTING}, now=at(1))
    updated = await store.update_run(run.id, now=at(2), next_poll_at=at(3))
    assert updated is not None
    assert updated.next_poll_at is None


async def test_reschedule_runs_updates_many_runs_at_once(store: Store) -> None:
    """Poll time and message of every listed run move together; URL only where one is given."""
    first, second = await submitted(store), await submitted(store)
    updates = [
        Reschedule(first.id, S.SUBMITTING, at(30), "Running", "https://adb/#run/1"),
        Reschedule(second.id, S.SUBMITTING, at(40), "Pending"),
    ]
    assert await store.reschedule_runs(updates) == 2
    one, two = await store.get_run_by_id(first.id), await store.get_run_by_id(second.id)
    assert one is not None
    assert two is not None
    assert (one.next_poll_at, one.state_message, one.run_page_url) == (
        at(30),
        "Running",
        "https://adb/#run/1",
    )
    assert (two.next_poll_at, two.state_message, two.run_page_url) == (at(40), "Pending", None)
    assert one.updated_at == two.updated_at == NOW
    history = await store.get_run_by_id(first.id, with_history=True)
    assert history is not None
    assert len(history.history) == 1


async def test_reschedule_runs_leaves_what_is_not_given(store: Store) -> None:
    """Without a message or URL only the poll time moves; the state and history stay."""
    run = await submitted(store)
    await store.update_run(run.id, state_message="Waiting", run_page_url="https://adb/#run/9")
    assert await store.reschedule_runs([Reschedule(run.id, S.SUBMITTING, at(50))]) == 1
    got = await store.get_run_by_id(run.id)
    assert got is not None
    assert (got.state, got.next_poll_at, got.state_message, got.run_page_url) == (
        S.SUBMITTING,
        at(50),
        "Waiting",
        "https://adb/#run/9",
    )


async def test_reschedule_runs_leaves_a_run_that_changed_state(store: Store) -> None:
    """A run that moved since it was polled keeps what its transition wrote."""
    run, other = await submitted(store), await submitted(store)
    await store.transition(run.id, S.CANCELED, expected={S.SUBMITTING}, now=at(1))
    updates = [
        Reschedule(run.id, S.SUBMITTING, at(30), "x"),
        Reschedule(other.id, S.SUBMITTING, at(30), "y"),
        Reschedule(424242, S.SUBMITTING, at(30), "z"),
    ]
    assert await store.reschedule_runs(updates) == 1
    got = await store.get_run_by_id(run.id)
    assert got is not None
    assert (got.next_poll_at, got.state, got.state_message) == (None, S.CANCELED, "")


async def test_reschedule_runs_refuses_to_make_an_ended_run_due(store: Store) -> None:
    """An update expecting a terminal state is a caller bug: ValueError, nothing written."""
    run, ended = await submitted(store), await submitted(store)
    await store.transition(ended.id, S.FAILED, expected={S.SUBMITTING}, now=at(1))
    updates = [
        Reschedule(run.id, S.SUBMITTING, at(30), "x"),
        Reschedule(ended.id, S.FAILED, at(30), "y"),
    ]
    with pytest.raises(ValueError, match="never due"):
        await store.reschedule_runs(updates)
    assert await store.get_run_by_id(run.id) == run


async def test_reschedule_runs_of_nothing_is_nothing(store: Store) -> None:
    """An empty batch updates nothing and returns 0."""
    assert await store.reschedule_runs([]) == 0


async def test_a_run_is_found_by_its_databricks_id_in_its_namespace_only(store: Store) -> None:
    """get_run_by_remote_id finds the namespace's run by Databricks' id, never another's."""
    run, _ = await store.create_run(new_run(), NOW)
    await store.transition(
        run.id, S.PENDING, expected={S.SUBMITTING}, now=at(1), databricks_run_id=9001
    )
    found = await store.get_run_by_remote_id("team-a", 9001)
    assert found is not None
    assert found.id == run.id
    assert await store.get_run_by_remote_id("team-b", 9001) is None
    assert await store.get_run_by_remote_id("team-a", 9002) is None
