"""flytekitplugins-spark's Databricks connector, unchanged: create, get and delete.

The task template is what flytekit serializes for a Databricks task (``custom`` carries
``databricksConf``, ``databricksInstance`` and the Spark settings); the connector posts
``https://<instance>/api/2.1/jobs/runs/submit`` itself, so the harness serves HTTPS with a CA
this environment trusts (SSL_CERT_FILE). Classic compute (``existing_cluster_id``) makes the
connector send the single-task shape; serverless (``environments``) sends ``tasks[]``. The
token is the connector's default secret, FLYTE_DATABRICKS_ACCESS_TOKEN.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import Any

from _steps import Steps, read_args
from flyteidl.core.execution_pb2 import TaskExecution
from flytekit.models import literals, task
from flytekit.models.core.identifier import Identifier, ResourceType
from flytekit.models.interface import TypedInterface
from flytekitplugins.spark.connector import DatabricksConnector

CLUSTER = "0101-000000-clients"
FINAL = {TaskExecution.SUCCEEDED, TaskExecution.FAILED, TaskExecution.ABORTED}


def _template(instance: str, name: str, serverless: bool) -> task.TaskTemplate:
    conf: dict[str, Any] = {"run_name": name, "timeout_seconds": 3600}
    if serverless:
        conf["environment_key"] = "default"
    else:
        conf["existing_cluster_id"] = CLUSTER
    custom = {
        "sparkConf": {"spark.driver.memory": "1000M"},
        "applications_path": "dbfs:/entrypoint.py",
        "mainApplicationFile": "dbfs:/entrypoint.py",
        "databricksConf": conf,
        "databricksInstance": instance,
    }
    runtime = task.RuntimeMetadata(task.RuntimeMetadata.RuntimeType.FLYTE_SDK, "1.0.0", "python")
    metadata = task.TaskMetadata(
        True, runtime, timedelta(days=1), literals.RetryStrategy(0), True, "0.1", "", False, "", ()
    )
    container = task.Container(
        image="flyteorg/flytekit:spark",
        command=[],
        args=["pyflyte-execute", "--inputs", "s3://bucket/inputs.pb", "--resolver", "default"],
        resources=task.Resources(requests=[], limits=[]),
        env={"FOO": "bar"},
        config={},
    )
    ident = Identifier(ResourceType.TASK, "project", "domain", name, "1")
    return task.TaskTemplate(
        id=ident,
        type="spark",
        metadata=metadata,
        interface=TypedInterface(inputs={}, outputs={}),
        custom=custom,
        container=container,
    )


async def _until(connector: DatabricksConnector, meta: Any, phases: set[int]) -> str:
    for _ in range(120):
        resource = await connector.get(meta)
        if resource.phase in phases:
            return str(TaskExecution.Phase.Name(resource.phase))
        await asyncio.sleep(0.5)
    raise TimeoutError(f"run {meta.run_id} did not reach {phases}")


async def scenario(steps: Steps, args: dict[str, Any], serverless: bool) -> None:
    connector = DatabricksConnector()
    name = args["run_name"]
    done = _template(args["instance"], name, serverless)
    meta = await steps.arun("create", lambda: connector.create(done))
    steps.run("create.run_id", lambda: meta.run_id)
    await steps.arun("get.final", lambda: _until(connector, meta, FINAL))
    cancelled = _template(args["instance"], name + "-cancel", serverless)
    other = await steps.arun("create.second", lambda: connector.create(cancelled))
    await steps.arun("delete", lambda: connector.delete(other))
    await steps.arun("delete.final", lambda: _until(connector, other, FINAL))


def main() -> None:
    args, steps = read_args(), Steps()
    os.environ["FLYTE_DATABRICKS_ACCESS_TOKEN"] = args["token"]
    os.environ["_FSEC_FLYTE_DATABRICKS_ACCESS_TOKEN"] = args["token"]
    asyncio.run(scenario(steps, args, args["compute"] == "serverless"))
    steps.emit()


if __name__ == "__main__":
    main()
