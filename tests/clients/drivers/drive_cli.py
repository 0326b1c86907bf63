"""The legacy databricks-cli (pip, 0.18), unchanged: runs submit, get, list, cancel.

It runs as a user would run it, as the ``databricks`` command with DATABRICKS_HOST and
DATABRICKS_TOKEN set. Without ``--version`` it calls Jobs API 2.0, whose classic body is the
single-task shape; with ``--version=2.1`` the body has ``tasks[]``. It drops any port from the
host (it builds ``scheme://hostname/api/``), so the harness serves it on port 80.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _steps import Steps, read_args

CLI = str(Path(sys.executable).parent / "databricks")
CLUSTER = "0101-000000-clients"
NOTEBOOK = {"notebook_path": "/Shared/clients"}


def _cli(version: str | None, *args: str) -> Any:
    argv = [CLI, "runs", *args]
    if version is not None:
        argv.append(f"--version={version}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[1:3])} exited {done.returncode}: {done.stdout}{done.stderr}"
        )
    return json.loads(done.stdout)


def _body(name: str, version: str | None) -> dict[str, Any]:
    if version is None:
        return {"run_name": name, "existing_cluster_id": CLUSTER, "notebook_task": NOTEBOOK}
    task = {"task_key": "main", "existing_cluster_id": CLUSTER, "notebook_task": NOTEBOOK}
    return {"run_name": name, "tasks": [task]}


def _until_terminal(version: str | None, run_id: str) -> str:
    for _ in range(60):
        state = _cli(version, "get", "--run-id", run_id)["state"]
        if state["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
            return str(state.get("result_state"))
        time.sleep(0.5)
    raise TimeoutError(f"run {run_id} did not end")


def long_run(steps: Steps, name: str, version: str | None, count: int) -> None:
    """A run of ``count`` tasks: runs get shows them all (2.0 and 2.1 have no pages)."""
    tasks = [
        {"task_key": f"t{i:03d}", "existing_cluster_id": CLUSTER, "notebook_task": NOTEBOOK}
        for i in range(count)
    ]
    body = json.dumps({"run_name": name, "tasks": tasks})
    submitted = steps.run("submit", lambda: _cli(version, "submit", "--json", body))
    run_id = str(submitted["run_id"]) if submitted else ""
    got = steps.run("get", lambda: _cli(version, "get", "--run-id", run_id))
    steps.run("get.task_keys", lambda: [t["task_key"] for t in got["tasks"]])


def main() -> None:
    args, steps = read_args(), Steps()
    os.environ["DATABRICKS_HOST"] = args["port80_url"]
    os.environ["DATABRICKS_TOKEN"] = args["token"]
    version = args.get("version")
    if args.get("tasks"):
        long_run(steps, args["run_name"], version, int(args["tasks"]))
        steps.emit()
        return
    # A "-cancel" run runs for minutes in the harness: the cancel always finds it running.
    body = json.dumps(_body(args["run_name"] + "-cancel", version))
    submitted = steps.run("submit", lambda: _cli(version, "submit", "--json", body))
    run_id = str(submitted["run_id"]) if submitted else ""
    steps.run("get", lambda: _cli(version, "get", "--run-id", run_id)["run_id"] == int(run_id))
    listed = steps.run("list", lambda: _cli(version, "list", "--output", "JSON"))
    steps.run("list.contains", lambda: int(run_id) in [r["run_id"] for r in listed["runs"]])
    steps.run("cancel", lambda: _cli(version, "cancel", "--run-id", run_id))
    steps.run("cancel.state", lambda: _until_terminal(version, run_id))
    steps.emit()


if __name__ == "__main__":
    main()
