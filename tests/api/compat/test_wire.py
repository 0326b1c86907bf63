"""The shapes of runs as Databricks clients see them: from the ledger, and from Databricks."""

from __future__ import annotations

from typing import Any

import pytest
from databricks.sdk.service import jobs

from gateway.api.compat import wire as cw
from gateway.api.compat.errors import CompatError
from gateway.databricks import wire
from gateway.model import RunRecord, RunState, map_remote_status
from tests.api.compat.factories import EPOCH_MS, SPEC, ledger_run

ORIGIN = "https://lakegate.example"


def shape(run: RunRecord) -> dict[str, Any]:
    return cw.ledger_run(run, ORIGIN)


def output(run: RunRecord) -> dict[str, Any]:
    return cw.ledger_output(run, ORIGIN)


# --- runs lakegate answers for alone ----------------------------------------------------------

# state -> (life_cycle_state, result_state, status.state, termination code, user flag)
LEDGER_SHAPES: list[tuple[RunState, str, str | None, str, str | None, bool]] = [
    (RunState.QUEUED, "QUEUED", None, "QUEUED", None, False),
    (RunState.SUBMITTING, "QUEUED", None, "QUEUED", None, False),
    (RunState.PENDING, "PENDING", None, "PENDING", None, False),
    (RunState.RUNNING, "RUNNING", None, "RUNNING", None, False),
    (RunState.TERMINATING, "TERMINATING", None, "TERMINATING", None, False),
    (RunState.SUCCEEDED, "TERMINATED", "SUCCESS", "TERMINATED", "SUCCESS", False),
    (RunState.FAILED, "TERMINATED", "FAILED", "TERMINATED", "RUN_EXECUTION_ERROR", False),
    (RunState.TIMED_OUT, "TERMINATED", "TIMEDOUT", "TERMINATED", "CANCELED", True),
    (RunState.CANCELED, "TERMINATED", "CANCELED", "TERMINATED", "USER_CANCELED", True),
    (RunState.SKIPPED, "SKIPPED", None, "TERMINATED", "SKIPPED", False),
    (RunState.INTERNAL_ERROR, "INTERNAL_ERROR", "FAILED", "TERMINATED", "INTERNAL_ERROR", False),
    (
        RunState.REJECTED,
        "INTERNAL_ERROR",
        "FAILED",
        "TERMINATED",
        "INVALID_RUN_CONFIGURATION",
        False,
    ),
]


def test_the_table_covers_every_state() -> None:
    """Every ledger state has a Databricks shape in the table below."""
    assert {row[0] for row in LEDGER_SHAPES} == set(RunState)


@pytest.mark.parametrize(("state", "life_cycle", "result", "status", "code", "flag"), LEDGER_SHAPES)
def test_a_ledger_run_takes_the_databricks_shape_of_its_state(
    state: RunState, life_cycle: str, result: str | None, status: str, code: str | None, flag: bool
) -> None:
    """Each ledger state shows as the life cycle, result and termination Databricks uses."""
    view = shape(ledger_run(state=state, state_message="why"))
    assert view["state"]["life_cycle_state"] == life_cycle
    assert view["state"].get("result_state") == result
    assert view["state"]["user_cancelled_or_timedout"] is flag
    assert view["status"]["state"] == status
    assert view["status"].get("termination_details", {}).get("code") == code


@pytest.mark.parametrize("row", LEDGER_SHAPES, ids=lambda row: row[0].value)
def test_our_own_mapping_reads_each_shape_back_as_its_state(row: tuple[Any, ...]) -> None:
    """map_remote_status turns each synthesized shape back into the ledger's state.

    Held runs read as PENDING (Databricks' queue is PENDING for us) and REJECTED as FAILED:
    Databricks has no word for a run it refused.
    """
    state: RunState = row[0]
    view = shape(ledger_run(state=state))
    expected = {
        RunState.QUEUED: RunState.PENDING,
        RunState.SUBMITTING: RunState.PENDING,
        RunState.REJECTED: RunState.FAILED,
    }.get(state, state)
    assert map_remote_status(wire.parse_remote_status(view)) is expected


@pytest.mark.parametrize("state", list(RunState))
def test_the_sdk_parses_every_synthesized_run(state: RunState) -> None:
    """databricks-sdk's Run.from_dict reads each shape with every enum it knows."""
    view = shape(ledger_run(state=state, state_message="m"))
    run = jobs.Run.from_dict(view)
    assert run.run_id == 7
    assert run.state is not None
    assert run.state.life_cycle_state is not None
    assert run.status is not None
    assert run.status.state is not None


def test_a_run_held_for_quota_says_so_in_its_queue_details() -> None:
    """QUEUED: Databricks' queue code for an active-runs limit, and lakegate's reason."""
    view = shape(ledger_run(state=RunState.QUEUED))
    queue = view["status"]["queue_details"]
    assert queue["code"] == "ACTIVE_RUNS_LIMIT_REACHED"
    assert "lakegate" in queue["message"]
    assert view["state"]["state_message"] == queue["message"] == view["state"]["queue_reason"]


def test_a_run_being_submitted_is_queued_with_the_ledgers_reason() -> None:
    """SUBMITTING: QUEUED with no Databricks queue code, and why the submission waits."""
    run = ledger_run(state=RunState.SUBMITTING, state_message="waiting to submit (attempt 2)")
    view = shape(run)
    assert "code" not in view["status"]["queue_details"]
    assert view["state"]["state_message"].endswith("waiting to submit (attempt 2)")


def test_a_synthesized_run_names_itself_by_the_lakegate_id() -> None:
    """run_id, number_in_job and original_attempt_run_id are all the ledger id."""
    view = shape(ledger_run(run_id=41, state=RunState.QUEUED))
    assert view["run_id"] == view["number_in_job"] == view["original_attempt_run_id"] == 41
    assert view["run_type"] == "SUBMIT_RUN"
    assert view["run_name"] == SPEC["run_name"]


def test_times_are_epoch_ms_and_end_time_is_zero_until_the_run_ends() -> None:
    """start_time is the submission; end_time the terminal transition's time, else 0."""
    running = shape(ledger_run(state=RunState.RUNNING))
    ended = shape(ledger_run(state=RunState.FAILED, ended_seconds=90))
    assert running["start_time"] == ended["start_time"] == EPOCH_MS
    assert running["end_time"] == 0
    assert ended["end_time"] == EPOCH_MS + 90_000


def test_a_run_without_a_name_is_untitled() -> None:
    """Databricks' default run name."""
    assert shape(ledger_run(spec={"tasks": []}))["run_name"] == "Untitled"


def test_job_id_and_run_page_url_are_always_there() -> None:
    """Clients read both straight after submitting: job_id 0 names no job, and the page is
    lakegate's own until Databricks gives one."""
    held = shape(ledger_run(run_id=9, state=RunState.SUBMITTING))
    assert held["job_id"] == 0
    assert held["run_page_url"] == f"{ORIGIN}/v1/namespaces/team-a/runs/9"
    url = "https://adb.example/?o=1#job/2/run/3"
    assert shape(ledger_run(run_page_url=url))["run_page_url"] == url


def test_ledger_output_explains_a_run_that_ended_without_databricks() -> None:
    """get-output of a rejected run: the run as metadata and the reason as error."""
    out = output(ledger_run(state=RunState.REJECTED, state_message="refused: bad"))
    assert out["metadata"]["run_id"] == 7
    assert out["error"] == "refused: bad"
    assert "error" not in output(ledger_run(state=RunState.SUBMITTING))


# --- runs Databricks holds ----------------------------------------------------------------


def _remote(run_id: int = 455_644_833) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "job_id": 118_822,
        "number_in_job": run_id,
        "original_attempt_run_id": run_id,
        "run_page_url": f"https://adb.example/?o=1#job/118822/run/{run_id}",
        "state": {"life_cycle_state": "RUNNING"},
        "cluster_instance": {"cluster_id": "c-1"},
        "tasks": [{"task_key": "main", "run_id": run_id + 1, "state": {}}],
    }


def test_a_remote_run_shows_the_lakegate_id_and_every_other_field_as_sent() -> None:
    """The run's own ids become lakegate's; tasks, URLs and unknown fields pass through."""
    payload = _remote()
    view = cw.remote_run(payload, ledger_run(run_id=5, databricks_run_id=455_644_833))
    assert (view["run_id"], view["number_in_job"], view["original_attempt_run_id"]) == (5, 5, 5)
    assert view["tasks"] == payload["tasks"]
    assert view["run_page_url"] == payload["run_page_url"]
    assert view["cluster_instance"] == payload["cluster_instance"]
    assert payload["run_id"] == 455_644_833, "the input is not modified"


def test_an_id_naming_another_attempt_is_left_alone() -> None:
    """original_attempt_run_id of a different run is not claimed as lakegate's."""
    payload = {**_remote(), "original_attempt_run_id": 111}
    view = cw.remote_run(payload, ledger_run(run_id=5, databricks_run_id=455_644_833))
    assert view["original_attempt_run_id"] == 111


def test_a_single_task_run_stands_for_its_task_run_in_get_output() -> None:
    """The only task's run id is the one get-output asks Databricks about."""
    assert cw.output_task_run_id(_remote(100)) == 101


@pytest.mark.parametrize(
    "tasks",
    [
        [{"task_key": "a", "run_id": 1}, {"task_key": "b", "run_id": 2}],
        [],
        [{"task_key": "a"}],
        None,
    ],
)
def test_get_output_of_anything_else_is_databricks_multi_task_refusal(tasks: Any) -> None:
    """Several tasks, or no task run yet: Databricks' own 400 message."""
    with pytest.raises(CompatError) as caught:
        cw.output_task_run_id({"tasks": tasks})
    assert caught.value.message == cw.MULTI_TASK_OUTPUT


def test_get_output_metadata_names_the_parent_by_the_lakegate_id() -> None:
    """metadata.job_run_id becomes the lakegate id only when it is the run's Databricks id."""
    run = ledger_run(run_id=5, databricks_run_id=900)
    out = cw.remote_output({"metadata": {"run_id": 901, "job_run_id": 900}, "logs": "x"}, run)
    assert out == {"metadata": {"run_id": 901, "job_run_id": 5}, "logs": "x"}
    other = {"metadata": {"run_id": 901, "job_run_id": 77}}
    assert cw.remote_output(other, run) == other
    assert cw.remote_output(other, None) == other


# --- runs/list answers ---------------------------------------------------------------------


def test_an_empty_list_leaves_runs_out() -> None:
    """Databricks omits ``runs`` when there are none, and says has_more false."""
    assert cw.list_body([], None) == {"has_more": False}


def test_a_list_page_with_more_hands_out_a_token() -> None:
    """has_more and next_page_token go together."""
    body = cw.list_body([cw.ledger_run(ledger_run(), ORIGIN)], "token-9")
    assert body["has_more"] is True
    assert body["next_page_token"] == "token-9"
    assert [run["run_id"] for run in body["runs"]] == [7]


def test_a_list_item_keeps_tasks_only_when_asked() -> None:
    """runs/list shows a run as runs/get does, minus tasks unless expand_tasks, and never
    runs/get's own task page token."""
    shown = {"run_id": 7, "job_id": 118_822, "tasks": [{"run_id": 9}], "next_page_token": "t"}
    assert cw.list_item(shown, expand_tasks=False) == {"run_id": 7, "job_id": 118_822}
    assert cw.list_item(shown, expand_tasks=True) == {
        "run_id": 7,
        "job_id": 118_822,
        "tasks": [{"run_id": 9}],
    }
    assert "tasks" in shown


def test_a_task_run_names_its_parent_by_lakegate_s_id() -> None:
    """runs/get of a task run id: the task's ids stay Databricks', its job_run_id is ours."""
    run = ledger_run(7, databricks_run_id=455_644_833)
    payload = {"run_id": 455_644_834, "job_run_id": 455_644_833, "task_key": "main"}
    assert cw.remote_task_run(payload, run) == {**payload, "job_run_id": 7}
    other = {**payload, "job_run_id": 1}
    assert cw.remote_task_run(other, run) == other
