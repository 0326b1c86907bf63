"""The run registry: ids, idempotency, the active-run slots and their queue, owners' lists."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.emulator.databricks.config import LifecycleConfig, LimitsConfig, OutcomeRule
from gateway.emulator.databricks.identity import Principal
from gateway.emulator.databricks.lifecycle import Outcome
from gateway.emulator.databricks.runs import LimitReached, ListQuery, RunRegistry, plan_for
from gateway.emulator.databricks.validation import SubmitSpec, parse_submit

T0 = 1_767_225_600_000
ALICE = Principal("alice@example.com", None)
BOT = Principal("team-a-sp", "6f1c2c1e-0000-4000-8000-000000000001")
LIFECYCLE = LifecycleConfig(pending_seconds=10, running_seconds=60, terminating_seconds=5)


def spec(name: str = "run", tasks: int = 1, **body: Any) -> SubmitSpec:
    parsed = parse_submit(
        json.dumps(
            {
                "run_name": name,
                "tasks": [
                    {"task_key": f"t{i}", "notebook_task": {"notebook_path": "/n"}}
                    for i in range(tasks)
                ],
                **body,
            }
        )
    )
    assert isinstance(parsed, SubmitSpec)
    return parsed


def registry(max_active: int = 100, max_queued: int = 100, **lifecycle: Any) -> RunRegistry:
    return RunRegistry(
        LIFECYCLE.model_copy(update=lifecycle),
        LimitsConfig(max_active_runs=max_active, max_queued_runs=max_queued),
        first_run_id=5_000_000_000_001,
        first_job_id=900_000_000_001,
    )


def test_run_and_task_ids_are_distinct_int64s() -> None:
    """A run and each of its tasks get their own ids, above 2**32."""
    reg = registry()
    run_id, created = reg.submit(spec(tasks=2), ALICE, T0)
    record = reg.get(run_id)
    assert created
    assert record is not None
    ids = [run_id, *(t.run_id for t in record.tasks)]
    assert len(set(ids)) == 3
    assert min(ids) > 2**32
    assert reg.get_task(record.tasks[1].run_id) == (record, record.tasks[1])


def test_a_repeated_idempotency_token_returns_the_first_run() -> None:
    """The same token gives the same run id and creates nothing, whoever sends it."""
    reg = registry()
    first, _ = reg.submit(spec(idempotency_token="tok"), ALICE, T0)
    again, created = reg.submit(spec("other", idempotency_token="tok"), BOT, T0 + 1)
    assert (again, created, len(reg)) == (first, False, 1)


def test_a_repeated_token_is_answered_even_at_the_limit() -> None:
    """Idempotent retries never meet the active-run limit."""
    reg = registry(max_active=1)
    first, _ = reg.submit(spec(idempotency_token="tok"), ALICE, T0)
    assert reg.submit(spec(idempotency_token="tok"), ALICE, T0) == (first, False)


def test_the_active_run_limit_refuses_with_the_real_message() -> None:
    """Beyond max_active_runs a non-queueing submit raises the Databricks message."""
    reg = registry(max_active=2)
    reg.submit(spec(), ALICE, T0)
    reg.submit(spec(), ALICE, T0)
    with pytest.raises(LimitReached, match=r"^There are already 2 active runs \(limit: 2\)\.$"):
        reg.submit(spec(), ALICE, T0)


def test_a_slot_frees_when_a_run_terminates() -> None:
    """A run holds its slot until TERMINATED, then another may start."""
    reg = registry(max_active=1)
    reg.submit(spec(), ALICE, T0)
    with pytest.raises(LimitReached):
        reg.submit(spec(), ALICE, T0 + 74_999)
    _, created = reg.submit(spec(), ALICE, T0 + 75_000)
    assert created


def test_a_queued_run_starts_when_a_slot_frees() -> None:
    """With queue enabled the run waits QUEUED and is admitted at the instant a run ends."""
    reg = registry(max_active=1)
    reg.submit(spec(), ALICE, T0)
    queued, _ = reg.submit(spec(queue={"enabled": True}), ALICE, T0 + 1_000)
    record = reg.get(queued)
    assert record is not None
    reg.refresh(T0 + 50_000)
    assert record.snapshot(T0 + 50_000).life_cycle_state == "QUEUED"
    reg.refresh(T0 + 200_000)
    assert record.timeline.admitted_ms == T0 + 75_000
    assert record.snapshot(T0 + 200_000).queue_ms == 74_000


def test_queue_by_default_applies_when_the_spec_is_silent() -> None:
    """queue_by_default queues a submit that does not mention queue."""
    reg = registry(max_active=1, queue_by_default=True)
    reg.submit(spec(), ALICE, T0)
    _, created = reg.submit(spec(), ALICE, T0)
    assert created
    assert reg.queued_count == 1


def test_a_full_queue_refuses() -> None:
    """Beyond max_queued_runs even a queueing submit is refused."""
    reg = registry(max_active=1, max_queued=1)
    reg.submit(spec(), ALICE, T0)
    reg.submit(spec(queue={"enabled": True}), ALICE, T0)
    with pytest.raises(LimitReached, match="queued runs"):
        reg.submit(spec(queue={"enabled": True}), ALICE, T0)


def test_a_cancelled_queued_run_leaves_the_queue() -> None:
    """Cancelling a queued run removes it from the queue; it never starts."""
    reg = registry(max_active=1)
    reg.submit(spec(), ALICE, T0)
    queued, _ = reg.submit(spec(queue={"enabled": True}), ALICE, T0)
    assert reg.cancel(queued, T0 + 1_000)
    assert reg.queued_count == 0
    record = reg.get(queued)
    assert record is not None
    assert record.snapshot(T0 + 100_000).result_state == "CANCELED"


def test_cancel_frees_the_slot_after_terminating() -> None:
    """A cancelled run's slot frees when its TERMINATING phase ends."""
    reg = registry(max_active=1)
    run_id, _ = reg.submit(spec(), ALICE, T0)
    reg.cancel(run_id, T0 + 1_000)
    with pytest.raises(LimitReached):
        reg.submit(spec(), ALICE, T0 + 5_999)
    assert reg.submit(spec(), ALICE, T0 + 6_000)[1]


def test_cancel_by_task_run_id_cancels_the_run() -> None:
    """A task run id is accepted by cancel."""
    reg = registry()
    run_id, _ = reg.submit(spec(), ALICE, T0)
    record = reg.get(run_id)
    assert record is not None
    assert reg.cancel(record.tasks[0].run_id, T0 + 1_000)
    assert record.timeline.cancel_ms == T0 + 1_000


def test_cancel_of_an_unknown_id_is_refused() -> None:
    """An id the workspace never gave out is not cancelled."""
    assert not registry().cancel(42, T0)


def test_the_first_matching_rule_decides_the_plan() -> None:
    """A run_name glob rule picks outcome and durations; the task's own ask wins."""
    config = LIFECYCLE.model_copy(
        update={
            "rules": (
                OutcomeRule(run_name="nightly-*", result=Outcome.FAILED, running_seconds=3),
                OutcomeRule(run_name="*", result=Outcome.SUCCESS),
            )
        }
    )
    plan = plan_for(config, spec("nightly-7"))
    assert (plan.outcome, plan.pending_ms, plan.running_ms) == (Outcome.FAILED, 10_000, 3_000)
    asked = parse_submit(
        json.dumps(
            {
                "run_name": "nightly-8",
                "tasks": [
                    {
                        "task_key": "t",
                        "notebook_task": {
                            "notebook_path": "/n",
                            "base_parameters": {
                                "lakegate_emulator_result": "SUCCESS",
                                "lakegate_emulator_seconds": "1",
                            },
                        },
                    }
                ],
            }
        )
    )
    assert isinstance(asked, SubmitSpec)
    plan = plan_for(config, asked)
    assert (plan.outcome, plan.running_ms) == (Outcome.SUCCESS, 1_000)


def ids(page_runs: list[Any]) -> list[int]:
    return [r.run_id for r in page_runs]


def test_owners_see_only_their_runs_newest_first() -> None:
    """Listing shows the caller's runs, newest first."""
    reg = registry()
    mine = [reg.submit(spec(), ALICE, T0 + i)[0] for i in range(3)]
    reg.submit(spec(), BOT, T0)
    page = reg.owned_by(ALICE, ListQuery(limit=25), T0 + 10)
    assert ids(page.runs) == list(reversed(mine))
    assert not page.has_more


def test_pages_chain_forward_and_back() -> None:
    """next and prev cursors walk the same runs in both directions."""
    reg = registry()
    mine = [reg.submit(spec(), ALICE, T0 + i)[0] for i in range(5)][::-1]
    first = reg.owned_by(ALICE, ListQuery(limit=2), T0)
    assert (ids(first.runs), first.has_more, first.prev_token) == (mine[:2], True, None)
    assert first.next_token is not None
    second = reg.owned_by(ALICE, ListQuery(limit=2, cursor=("before", first.next_token)), T0)
    assert ids(second.runs) == mine[2:4]
    assert second.prev_token is not None
    back = reg.owned_by(ALICE, ListQuery(limit=2, cursor=("after", second.prev_token)), T0)
    assert ids(back.runs) == mine[:2]
    assert back.prev_token is None
    last = reg.owned_by(ALICE, ListQuery(limit=2, cursor=("before", mine[3])), T0)
    assert (ids(last.runs), last.has_more, last.next_token) == (mine[4:], False, None)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (ListQuery(limit=25, active_only=True), ["running"]),
        (ListQuery(limit=25, completed_only=True), ["done"]),
        (ListQuery(limit=25, start_time_from=T0 + 100_000), ["running"]),
        (ListQuery(limit=25, start_time_to=T0), ["done"]),
        (ListQuery(limit=25, submit_runs=False), []),
        (ListQuery(limit=25, offset=1), ["done"]),
    ],
)
def test_list_filters(query: ListQuery, expected: list[str]) -> None:
    """active_only, completed_only, start-time bounds, run_type and offset filter the list."""
    reg = registry()
    reg.submit(spec("done"), ALICE, T0)
    reg.submit(spec("running"), ALICE, T0 + 100_000)
    page = reg.owned_by(ALICE, query, T0 + 120_000)
    assert [r.spec.run_name for r in page.runs] == expected


def test_job_id_filter_finds_the_one_run() -> None:
    """Each one-time run has its own job id, and job_id filters by it."""
    reg = registry()
    first, _ = reg.submit(spec(), ALICE, T0)
    reg.submit(spec(), ALICE, T0)
    record = reg.get(first)
    assert record is not None
    page = reg.owned_by(ALICE, ListQuery(limit=25, job_id=record.job_id), T0)
    assert ids(page.runs) == [first]


def test_reset_forgets_runs_but_never_reuses_ids() -> None:
    """After reset the registry is empty and new ids are still fresh."""
    reg = registry()
    old, _ = reg.submit(spec(idempotency_token="tok"), ALICE, T0)
    reg.reset()
    new, created = reg.submit(spec(idempotency_token="tok"), ALICE, T0)
    assert created
    assert new > old
    assert len(reg) == 1


def test_the_slots_of_ten_thousand_runs_free_when_they_end() -> None:
    """Ten thousand active runs hold their slots until their end, then all free at once."""
    reg = registry(max_active=20_000)
    for i in range(10_000):
        reg.submit(spec(), ALICE, T0 + i)
    assert reg.active_count == 10_000
    reg.refresh(T0 + 74_999)
    assert reg.active_count == 10_000
    reg.refresh(T0 + 200_000)
    assert reg.active_count == 0
