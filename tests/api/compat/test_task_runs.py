"""Task run ids, as Databricks takes them: runs/get and runs/cancel of a task run of the
caller's namespace work; another namespace's task run is no run at all."""

from __future__ import annotations

import asyncio

import pytest
from databricks.sdk.errors import InvalidParameterValue, ResourceDoesNotExist

from tests.api.compat.conftest import TEAM_A, TEAM_B, CompatStack, in_thread
from tests.api.compat.test_sdk import tasks


async def running_task(stack: CompatStack, token: str, name: str) -> tuple[int, int]:
    """Submit a long run; its lakegate id and its one task's run id, once Databricks has it."""
    w = await in_thread(lambda: stack.sdk(token))
    waiter = await in_thread(lambda: w.jobs.submit(run_name=name, tasks=tasks(name, seconds=60)))
    run_id = waiter.run_id
    assert run_id is not None
    async with asyncio.timeout(20):
        while True:
            run = await in_thread(lambda: w.jobs.get_run(run_id))
            if run.tasks and run.tasks[0].run_id:
                return run_id, run.tasks[0].run_id
            await asyncio.sleep(0.1)


async def test_runs_get_of_a_task_run_id_answers_for_that_task(compat_stack: CompatStack) -> None:
    """The SDK's get_run(task_run_id): the task's own run, its parent named by lakegate's id."""
    stack = compat_stack
    token = stack.token(TEAM_A)
    run_id, task_run_id = await running_task(stack, token, "task-get")
    w = await in_thread(lambda: stack.sdk(token))
    task = await in_thread(lambda: w.jobs.get_run(task_run_id))
    assert task.run_id == task_run_id
    assert task.as_dict()["job_run_id"] == run_id


async def test_another_namespace_s_task_run_is_no_run(compat_stack: CompatStack) -> None:
    """team-01 asking for or cancelling team-00's task run hears what an unknown run gets,
    and team-00's run goes on."""
    stack = compat_stack
    run_id, task_run_id = await running_task(stack, stack.token(TEAM_A), "task-other")
    other = await in_thread(lambda: stack.sdk(stack.token(TEAM_B)))
    with pytest.raises(ResourceDoesNotExist, match=f"Run {task_run_id} does not exist"):
        await in_thread(lambda: other.jobs.get_run(task_run_id))
    with pytest.raises(ResourceDoesNotExist):
        await in_thread(lambda: other.jobs.get_run(987654321987))
    # What Databricks answers an unknown run on these calls: 400 INVALID_PARAMETER_VALUE.
    with pytest.raises(InvalidParameterValue, match=f"Run {task_run_id} does not exist"):
        await in_thread(lambda: other.jobs.cancel_run(task_run_id))
    with pytest.raises(ResourceDoesNotExist, match=f"Run {task_run_id} does not exist"):
        await in_thread(lambda: other.jobs.get_run_output(task_run_id))
    mine = await in_thread(lambda: stack.sdk(stack.token(TEAM_A)).jobs.get_run(run_id))
    assert mine.state is not None
    assert mine.state.life_cycle_state is not None
    assert mine.state.life_cycle_state.value in ("PENDING", "RUNNING")


async def test_cancelling_a_task_run_id_cancels_its_run(compat_stack: CompatStack) -> None:
    """runs/cancel with the task's run id: the run it belongs to ends CANCELED."""
    stack = compat_stack
    token = stack.token(TEAM_A)
    run_id, task_run_id = await running_task(stack, token, "task-cancel")
    w = await in_thread(lambda: stack.sdk(token))
    await in_thread(lambda: w.jobs.cancel_run(task_run_id))
    async with asyncio.timeout(20):
        while True:
            run = await in_thread(lambda: w.jobs.get_run(run_id))
            assert run.state is not None
            if run.state.result_state is not None:
                break
            await asyncio.sleep(0.1)
    assert run.state.result_state.value == "CANCELED"
