"""prefect-databricks, unchanged: its jobs_runs_submit_and_wait_for_completion flow.

The flow posts ``https://<instance>/api/2.1/jobs/runs/submit`` with its models, every unset
field as ``null``, polls runs/get to the end, and reads each task's get-output. It runs as a
Prefect flow does without a server configured: Prefect starts its own temporary local API.
"""

from __future__ import annotations

import asyncio
from typing import Any

from _steps import Steps, read_args
from prefect_databricks import DatabricksCredentials
from prefect_databricks.flows import jobs_runs_submit_and_wait_for_completion
from prefect_databricks.models.jobs import NotebookTask, RunSubmitTaskSettings

CLUSTER = "0101-000000-clients"


async def _flow(credentials: DatabricksCredentials, name: str) -> Any:
    task = RunSubmitTaskSettings(
        task_key="main",
        existing_cluster_id=CLUSTER,
        notebook_task=NotebookTask(notebook_path="/Shared/clients"),
    )
    outputs, metadata = await jobs_runs_submit_and_wait_for_completion(
        databricks_credentials=credentials,
        run_name=name,
        tasks=[task],
        max_wait_seconds=120,
        poll_frequency_seconds=1,
        return_metadata=True,
    )
    return {
        "outputs": sorted(outputs),
        "state": metadata["state"]["result_state"],
        "tasks": [t["task_key"] for t in metadata["tasks"]],
    }


def main() -> None:
    args, steps = read_args(), Steps()
    credentials = DatabricksCredentials(databricks_instance=args["instance"], token=args["token"])
    steps.run("flow", lambda: asyncio.run(_flow(credentials, args["run_name"])))
    steps.emit()


if __name__ == "__main__":
    main()
