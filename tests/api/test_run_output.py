"""GET /v1/namespaces/{ns}/runs/{id}/output against the emulated workspace: each task's
runs/get-output (notebook result, logs, error and error trace), asked as the run's identity."""

from __future__ import annotations

from typing import Any

from tests.api.schema import assert_matches, assert_problem
from tests.fixtures.gateway import GatewayStack, StackFactory, namespace_name

NS = namespace_name(1)  # an OAuth service principal of its own
CLUSTER = {"existing_cluster_id": "0101-000000-demo"}


def _notebook(key: str, **parameters: str) -> dict[str, Any]:
    return {
        "task_key": key,
        "notebook_task": {"notebook_path": f"/Jobs/{key}", "base_parameters": parameters},
        **CLUSTER,
    }


def _python(key: str) -> dict[str, Any]:
    return {"task_key": key, "spark_python_task": {"python_file": "dbfs:/x.py"}, **CLUSTER}


async def wide_run_output(stack: GatewayStack, keys: list[str]) -> dict[str, Any]:
    """The output of a run of one Python task per key, once it has ended."""
    spec = {"run_name": "wide", "tasks": [_python(key) for key in keys]}
    async with stack.client() as client:
        run = (await client.submit(NS, spec)).run
        await client.wait(NS, run["id"], poll_interval=0.2)
        output: dict[str, Any] = await client.output(NS, run["id"])
    return output


async def test_a_multi_task_run_shows_each_tasks_output(
    gateway_stack_factory: StackFactory,
) -> None:
    """Every task, in order, with its own output: a notebook's result, a script's logs, a
    failed task's error and error trace."""
    stack = await gateway_stack_factory(namespaces=2)
    spec = {
        "run_name": "three",
        "tasks": [
            _notebook("prepare", lakegate_emulator_output="42 rows"),
            _python("load"),
            _notebook("train", lakegate_emulator_result="FAILED"),
        ],
    }
    async with stack.client() as client:
        run = (await client.submit(NS, spec)).run
        ended = await client.wait(NS, run["id"], poll_interval=0.1)
        async with stack.session.get(
            f"{stack.url}/v1/namespaces/{NS}/runs/{run['id']}/output"
        ) as resp:
            assert resp.status == 200
            body = await resp.json()

    assert ended["state"] == "FAILED"
    assert_matches("RunOutput", body)
    assert [task["task_key"] for task in body["tasks"]] == ["prepare", "load", "train"]
    prepare, load, train = body["tasks"]
    assert prepare["notebook_output"] == {"result": "42 rows", "truncated": False}
    assert "error" not in prepare
    assert prepare["state"]["result_state"] == "SUCCESS"
    assert "ran for" in load["logs"]
    assert load["logs_truncated"] is False
    assert train["error"]
    assert "RuntimeError" in train["error_trace"]
    assert all(isinstance(task["run_id"], int) for task in body["tasks"])
    assert "metadata" not in train
    assert body["error"] == ended["state_message"]


async def test_a_run_databricks_never_had_has_no_tasks_and_says_why(
    gateway_stack_factory: StackFactory,
) -> None:
    """A run refused by Databricks: no tasks, and the refusal as its error."""
    stack = await gateway_stack_factory(namespaces=2)
    spec = {"run_name": "bad", "tasks": [_notebook("main", lakegate_emulator_result="NOPE")]}
    async with stack.session.post(
        f"{stack.url}/v1/namespaces/{NS}/runs", json={"spec": spec}
    ) as resp:
        assert resp.status == 422
        run_id = (await resp.json())["run_id"]
    async with stack.session.get(f"{stack.url}/v1/namespaces/{NS}/runs/{run_id}/output") as resp:
        body = await resp.json()

    assert resp.status == 200
    assert_matches("RunOutput", body)
    assert body["state"] == "REJECTED"
    assert body["tasks"] == []
    assert "lakegate_emulator_result" in body["error"]


async def test_another_namespaces_run_is_not_found(gateway_stack_factory: StackFactory) -> None:
    """The output of a run is read only in its own namespace: elsewhere it is a 404."""
    stack = await gateway_stack_factory(namespaces=2)
    spec = {"run_name": "mine", "tasks": [_notebook("main")]}
    async with stack.client() as client:
        run = (await client.submit(NS, spec)).run
    other = namespace_name(0)
    async with stack.session.get(
        f"{stack.url}/v1/namespaces/{other}/runs/{run['id']}/output"
    ) as resp:
        assert_problem(await resp.json(), 404)


async def test_every_task_of_a_run_over_a_page_is_shown(
    gateway_stack_factory: StackFactory,
) -> None:
    """Jobs API 2.2 pages a run's tasks 100 at a time: all 101 are there, in order."""
    stack = await gateway_stack_factory(namespaces=2)
    keys = [f"t{i:03d}" for i in range(101)]
    output = await wide_run_output(stack, keys)

    assert [task["task_key"] for task in output["tasks"]] == keys
    assert all("ran for" in task["logs"] for task in output["tasks"])
