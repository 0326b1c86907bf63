"""The run service on a real ledger and the emulator: submit, replay, read, list, cancel."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from gateway.errors import Conflict, KubernetesError, NotFound
from gateway.model import RunState
from gateway.runs.specs import RUN_COMPLETED
from gateway.runs.types import SubmitRequest
from tests.runs.conftest import SPEC, Wired, new_run

S = RunState


async def test_a_submission_is_answered_once_databricks_has_the_run(wired: Wired) -> None:
    """submit returns the run PENDING with its Databricks id, created, and counts it."""
    outcome = await wired.service.submit(
        "team-a", SubmitRequest(spec=SPEC, labels={"team": "a"}), idempotency_key="k-1"
    )
    assert outcome.created
    assert outcome.run.state is S.PENDING
    assert outcome.run.databricks_run_id == wired.emulator.runs()[0]["run_id"]
    assert outcome.run.labels == {"team": "a"}
    assert wired.count("lakegate_submissions", outcome="accepted") == 1


async def test_a_replay_is_answered_before_the_identity_is_resolved(wired: Wired) -> None:
    """The same key and body again gets the same run while Kubernetes is away."""
    first = await wired.submit(key="nightly")
    wired.identities.failures.append(KubernetesError("connection refused"))
    outcome = await wired.service.submit(
        "team-a", SubmitRequest(spec=SPEC), idempotency_key="nightly"
    )
    assert not outcome.created
    assert outcome.run.id == first.id
    assert len(wired.identities.calls) == 1
    assert wired.identities.failures  # the outage was never even asked about
    assert wired.count("lakegate_submissions", outcome="replayed") == 1
    assert len(wired.emulator.runs()) == 1


async def test_another_body_under_a_used_key_is_a_conflict(wired: Wired) -> None:
    """A different request reusing a key is refused with Conflict and creates nothing."""
    await wired.submit(key="once")
    with pytest.raises(Conflict, match="once"):
        await wired.submit(key="once", run_name="something else")
    assert len(wired.emulator.runs()) == 1


async def test_another_body_under_a_used_key_is_not_answered_from_the_ledger(
    wired: Wired,
) -> None:
    """Only a true replay skips the checks: a new body meets the identity outage first."""
    await wired.submit(key="once")
    wired.identities.failures.append(KubernetesError("connection refused"))
    with pytest.raises(KubernetesError):
        await wired.submit(key="once", run_name="something else")


async def test_an_unknown_run_is_not_found(wired: Wired) -> None:
    """get of an id the namespace does not have is NotFound, even if another has it."""
    run = await wired.submit("team-b")
    with pytest.raises(NotFound):
        await wired.service.get("team-a", run.id)


async def test_list_pages_through_the_namespace_newest_first(wired: Wired) -> None:
    """Two pages of two cover three runs, newest first, and the last has no cursor."""
    ids = [(await wired.submit()).id for _ in range(3)]
    first = await wired.service.list("team-a", states=None, limit=2, cursor=None)
    second = await wired.service.list("team-a", states=None, limit=2, cursor=first.next_cursor)
    assert [r.id for r in first.runs + second.runs] == ids[::-1]
    assert second.next_cursor is None


async def test_cancelling_a_queued_run_ends_it_without_databricks(wired: Wired) -> None:
    """A queued run is CANCELED at once, once, with its event; Databricks never hears of it."""
    queued, _ = await wired.ledger.accept(new_run(), admit=lambda usage: S.QUEUED)
    with capture_logs() as logs:
        canceled = await wired.service.cancel("team-a", queued.id)
        again = await wired.service.cancel("team-a", queued.id)
    assert (canceled.state, again.state) == (S.CANCELED, S.CANCELED)
    assert [e["type"] for e in await wired.outbox(queued)] == [RUN_COMPLETED]
    assert [e["state"] for e in logs if e["event"] == "run_finished"] == ["CANCELED"]
    assert wired.emulator.runs() == []


async def test_cancelling_a_run_at_databricks_asks_databricks(wired: Wired) -> None:
    """A PENDING run is flagged and cancelled at Databricks; the poller records the end."""
    run = await wired.submit()
    flagged = await wired.service.cancel("team-a", run.id)
    assert flagged.cancel_requested
    assert flagged.state is S.PENDING
    assert wired.emulator.runs()[0]["life_cycle_state"] in ("TERMINATING", "TERMINATED")


async def test_cancelling_another_namespaces_run_is_not_found(wired: Wired) -> None:
    """cancel is scoped to the namespace like every other operation."""
    run = await wired.submit("team-b")
    with pytest.raises(NotFound):
        await wired.service.cancel("team-a", run.id)
