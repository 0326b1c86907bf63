"""``lakegate output`` and what ``lakegate cancel`` says happens next."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.cli.run_output import format_output
from tests.cli.conftest import RunCli
from tests.cli.fake_gateway import FakeGateway

TRACE = 'Traceback (most recent call last):\n  File "train.py", line 3\nValueError: bad row\n'


def _tasks() -> list[dict[str, Any]]:
    return [
        {
            "task_key": "prepare",
            "run_id": 55,
            "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"},
            "notebook_output": {"result": "42 rows", "truncated": True},
        },
        {
            "task_key": "load",
            "run_id": 56,
            "state": {"result_state": "SUCCESS"},
            "logs": "loaded\nall\n",
            "logs_truncated": False,
            "sql_output": {"query_output": {"output_link": "https://x"}},
        },
        {
            "task_key": "train",
            "run_id": 57,
            "state": {"result_state": "FAILED", "state_message": "Workload failed"},
            "error": "ValueError: bad row",
            "error_trace": TRACE,
        },
        {"task_key": "report", "run_id": None, "state": {"life_cycle_state": "BLOCKED"}},
    ]


async def test_output_shows_each_task_with_result_logs_error_and_trace(
    cli: RunCli, gateway: FakeGateway
) -> None:
    """Task by task: the notebook result, the logs, other output as JSON, the error and its
    trace, and a task that never started said to have none."""
    run_id = gateway.add_run("team-a", "FAILED")
    gateway.outputs[run_id] = {"tasks": _tasks(), "error": "Task train failed"}

    result = await cli("output", "-n", "team-a", str(run_id))

    assert result.code == 0, result.err
    assert gateway.requests[0].path == f"/v1/namespaces/team-a/runs/{run_id}/output"
    assert result.out.splitlines() == [
        f"run {run_id}  FAILED",
        "error: Task train failed",
        "",
        "task prepare (task run 55)  SUCCESS",
        "  result (truncated by Databricks):",
        "    42 rows",
        "",
        "task load (task run 56)  SUCCESS",
        "  logs:",
        "    loaded",
        "    all",
        "  sql_output:",
        "    {",
        '      "query_output": {',
        '        "output_link": "https://x"',
        "      }",
        "    }",
        "",
        "task train (task run 57)  FAILED: Workload failed",
        "  error:",
        "    ValueError: bad row",
        "  error trace:",
        "    Traceback (most recent call last):",
        '      File "train.py", line 3',
        "    ValueError: bad row",
        "",
        "task report  BLOCKED",
        "  not started yet: no output",
    ]


async def test_output_as_json_is_the_answer_as_it_came(cli: RunCli, gateway: FakeGateway) -> None:
    """-o json prints the API's answer unchanged, for scripts."""
    run_id = gateway.add_run("team-a", "FAILED")
    gateway.outputs[run_id] = {"tasks": _tasks()}

    result = await cli("output", "-n", "team-a", str(run_id), "-o", "json")

    assert json.loads(result.out)["tasks"] == _tasks()


async def test_output_of_an_unknown_run_is_exit_2_with_the_problem(
    cli: RunCli, gateway: FakeGateway
) -> None:
    """A 404 is a refusal: exit 2, the problem on stderr, nothing on stdout."""
    result = await cli("output", "-n", "team-a", "99")

    assert result.code == 2
    assert result.out == ""
    assert "Run not found (404)" in result.err


def test_a_run_without_tasks_says_there_is_no_output() -> None:
    """A run Databricks never had: its reason, and no task."""
    text = format_output(
        {"id": 3, "state": "REJECTED", "tasks": [], "error": "INVALID_PARAMETER_VALUE: bad"}
    )
    assert text.splitlines() == [
        "run 3  REJECTED",
        "error: INVALID_PARAMETER_VALUE: bad",
        "no task ran at Databricks: there is no output to show",
    ]


@pytest.mark.parametrize(
    ("state", "said"),
    [
        (
            "RUNNING",
            "cancel requested for run 1: it ends CANCELED once Databricks confirms (or in the "
            "state it reaches first); follow it with `lakegate get -n team-a 1`, or wait for "
            "it with `lakegate cancel --wait -n team-a 1`",
        ),
        ("SUBMITTING", "it ends CANCELED once Databricks has it and confirms"),
        ("QUEUED", "run 1 was canceled before it reached Databricks"),
        ("SUCCEEDED", "run 1 had already ended SUCCEEDED: nothing to cancel"),
    ],
)
async def test_cancel_says_what_happens_next(
    cli: RunCli, gateway: FakeGateway, state: str, said: str
) -> None:
    """Without --wait, cancel prints the run and says on stderr when and how it ends."""
    run_id = gateway.add_run("team-a", state)

    result = await cli("cancel", "-n", "team-a", str(run_id))

    assert result.code == 0
    assert said in result.err
    assert "cancel_requested" in result.out


async def test_cancel_as_json_keeps_stdout_json(cli: RunCli, gateway: FakeGateway) -> None:
    """The note goes to stderr, so -o json output still parses."""
    run_id = gateway.add_run("team-a", "RUNNING")

    result = await cli("cancel", "-n", "team-a", str(run_id), "-o", "json")

    assert json.loads(result.out)["cancel_requested"] is True
    assert "cancel requested" in result.err
