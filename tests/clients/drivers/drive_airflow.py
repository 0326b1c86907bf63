"""apache-airflow-providers-databricks, unchanged: the hook (sync and async) and the operators.

The connection comes from AIRFLOW_CONN_LAKEGATE (the harness writes it: host, port, schema
``http`` and the token as the password), so the provider reads it as any deployment's; the
``shared`` scenario takes several (``AIRFLOW_CONN_<ID>``) that differ only in host. An
operator runs its own ``execute``; a deferrable one raises ``TaskDeferred``, whose trigger's
async generator runs here to its first event, which goes to ``execute_complete`` as the
triggerer would hand it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import _names
from _steps import Steps, read_args
from airflow.exceptions import TaskDeferred
from airflow.providers.databricks.hooks.databricks import DatabricksHook
from airflow.providers.databricks.operators.databricks import (
    DatabricksNotebookOperator,
    DatabricksSubmitRunOperator,
)

CONN = "lakegate"
CLUSTER = "0101-000000-clients"
NOTEBOOK = {"notebook_path": "/Shared/clients"}
FAST = {"databricks_conn_id": CONN, "polling_period_seconds": 1, "databricks_retry_delay": 1}


class _TaskInstance:
    """What operators push to XCom; enough of a task instance for execute()."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}
        self.stats_tags: dict[str, str] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def _context() -> dict[str, Any]:
    return {"ti": _TaskInstance()}


def _tasks_body(name: str) -> dict[str, Any]:
    task = {"task_key": "main", "existing_cluster_id": CLUSTER, "notebook_task": NOTEBOOK}
    return {"run_name": name, "tasks": [task]}


def _single_body(name: str) -> dict[str, Any]:
    return {"run_name": name, "existing_cluster_id": CLUSTER, "notebook_task": NOTEBOOK}


def hook_sync(steps: Steps, name: str) -> None:
    hook = DatabricksHook(databricks_conn_id=CONN, retry_delay=1)
    run_id = steps.run("submit_run", lambda: hook.submit_run(_tasks_body(name + "-cancel")))
    steps.run("get_run", lambda: hook.get_run(run_id)["run_id"] == run_id)
    steps.run("get_run_state", lambda: hook.get_run_state(run_id).life_cycle_state)
    steps.run("cancel_run", lambda: hook.cancel_run(run_id))
    steps.run("cancelled", lambda: _wait_terminal(hook, run_id))


def _wait_terminal(hook: DatabricksHook, run_id: int) -> str:
    for _ in range(60):
        state = hook.get_run_state(run_id)
        if state.is_terminal:
            return str(state.result_state)
        time.sleep(0.5)
    raise TimeoutError(f"run {run_id} did not end")


async def hook_async(steps: Steps, name: str) -> None:
    sync = DatabricksHook(databricks_conn_id=CONN, retry_delay=1)
    run_id = steps.run("submit_run", lambda: sync.submit_run(_tasks_body(name + "-cancel")))
    async with DatabricksHook(databricks_conn_id=CONN, retry_delay=1) as hook:
        await steps.arun("a_get_run_state", lambda: _state(hook, run_id))
        await steps.arun("a_get_run", lambda: _run_id_of(hook, run_id))
        await steps.arun("a_get_run_output", lambda: _output(hook, sync, run_id))
    steps.run("cancel_run", lambda: sync.cancel_run(run_id))


async def _state(hook: DatabricksHook, run_id: int) -> str:
    return (await hook.a_get_run_state(run_id)).life_cycle_state


async def _run_id_of(hook: DatabricksHook, run_id: int) -> bool:
    return (await hook.a_get_run(run_id))["run_id"] == run_id


async def _output(hook: DatabricksHook, sync: DatabricksHook, run_id: int) -> str:
    task_run_id = sync.get_run(run_id)["tasks"][0]["run_id"]
    output = await hook.a_get_run_output(task_run_id)
    return str(output["metadata"]["run_id"] == task_run_id)


def operator(steps: Steps, name: str, shape: str) -> None:
    body = _tasks_body(name) if shape == "tasks" else _single_body(name)
    op = DatabricksSubmitRunOperator(task_id=f"submit_{shape}", json=body, **FAST)
    context = _context()
    steps.run("execute", lambda: op.execute(context))
    steps.run("run_id", lambda: context["ti"].xcom["run_id"])
    steps.run("result", lambda: str(op._hook.get_run_state(op.run_id).result_state))


def deferrable(steps: Steps, name: str) -> None:
    op = DatabricksSubmitRunOperator(
        task_id="submit_deferred", json=_tasks_body(name), deferrable=True, **FAST
    )
    context = _context()
    deferred = steps.run("execute.defers", lambda: _defer(op, context))
    event = steps.run("trigger", lambda: asyncio.run(_first_event(deferred.trigger)))
    steps.run("trigger.state", lambda: event["run_state"])
    steps.run("execute_complete", lambda: op.execute_complete(context, event))


def _defer(op: DatabricksSubmitRunOperator, context: dict[str, Any]) -> TaskDeferred:
    try:
        op.execute(context)
    except TaskDeferred as deferred:
        return deferred
    raise AssertionError("the run ended before the operator deferred")


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger yielded no event")


def notebook(steps: Steps, name: str) -> None:
    op = DatabricksNotebookOperator(
        task_id=name.replace("-", "_"),
        notebook_path="/Shared/clients",
        source="WORKSPACE",
        existing_cluster_id=CLUSTER,
        **FAST,
    )
    context = _context()
    steps.run("execute", lambda: op.execute(context))
    steps.run("run_id", lambda: op.databricks_run_id)
    steps.run("result", lambda: str(op._hook.get_run_state(op.databricks_run_id).result_state))


def long_run(steps: Steps, name: str, count: int) -> None:
    """A run of ``count`` tasks read with get_run and a_get_run (API 2.2: both follow
    next_page_token and merge the pages)."""
    tasks = [
        {"task_key": f"t{i:03d}", "existing_cluster_id": CLUSTER, "notebook_task": NOTEBOOK}
        for i in range(count)
    ]
    hook = DatabricksHook(databricks_conn_id=CONN, retry_delay=1)
    run_id = steps.run("submit_run", lambda: hook.submit_run({"run_name": name, "tasks": tasks}))
    steps.run("get_run", lambda: [t["task_key"] for t in hook.get_run(run_id)["tasks"]])
    steps.run("a_get_run", lambda: asyncio.run(_task_keys(run_id)))


async def _task_keys(run_id: int) -> list[str]:
    async with DatabricksHook(databricks_conn_id=CONN, retry_delay=1) as hook:
        return [t["task_key"] for t in (await hook.a_get_run(run_id))["tasks"]]


def shared(steps: Steps, name: str, connections: list[str]) -> None:
    """DatabricksSubmitRunOperator once per connection (they differ only in host), each run
    named after its connection, followed to its end."""
    for conn in connections:
        op = DatabricksSubmitRunOperator(
            task_id=f"submit_{conn}",
            json=_tasks_body(f"{name}-{conn}"),
            **{**FAST, "databricks_conn_id": conn},
        )
        context = _context()
        steps.run(f"{conn}.execute", lambda op=op, context=context: op.execute(context))
        steps.run(
            f"{conn}.result", lambda op=op: str(op._hook.get_run_state(op.run_id).result_state)
        )


def main() -> None:
    # Before any client call: a connection may name a host only the harness resolves.
    _names.install()
    args, steps = read_args(), Steps()
    scenario, name = args["scenario"], args["run_name"]
    if scenario == "hook_sync":
        hook_sync(steps, name)
    elif scenario == "hook_async":
        asyncio.run(hook_async(steps, name))
    elif scenario in ("operator_tasks", "operator_single"):
        operator(steps, name, scenario.removeprefix("operator_"))
    elif scenario == "deferrable":
        deferrable(steps, name)
    elif scenario == "notebook":
        notebook(steps, name)
    elif scenario == "long":
        long_run(steps, name, int(args["tasks"]))
    elif scenario == "shared":
        shared(steps, name, list(args["connections"]))
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    steps.emit()


if __name__ == "__main__":
    main()
