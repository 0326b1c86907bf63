"""databricks-sdk, unchanged: jobs.submit + wait, get_run, list_runs, get_run_output, cancel;
or (``hosts``) one submit + wait per host, for a credential shared by several namespaces."""

from __future__ import annotations

from datetime import timedelta

from _steps import Steps, read_args
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.service.jobs import NotebookTask, SubmitTask

WAIT = timedelta(seconds=60)


def _task() -> SubmitTask:
    return SubmitTask(
        task_key="main",
        existing_cluster_id="0101-000000-clients",
        notebook_task=NotebookTask(notebook_path="/Shared/clients"),
    )


def by_host(steps: Steps, args: dict[str, object], hosts: dict[str, str]) -> None:
    """One client per host (nothing else differs), each submitting a run named after it."""
    for label, host in hosts.items():
        config = Config(host=host, token=args["token"], auth_type="pat", retry_timeout_seconds=30)
        w = WorkspaceClient(config=config)
        name = f"{args['run_name']}-{label}"
        waiter = steps.run(
            f"{label}.submit", lambda w=w, n=name: w.jobs.submit(run_name=n, tasks=[_task()])
        )
        steps.run(
            f"{label}.state", lambda wt=waiter: wt.result(timeout=WAIT).state.result_state.value
        )


def main() -> None:
    args, steps = read_args(), Steps()
    if args.get("hosts"):
        by_host(steps, args, dict(args["hosts"]))
        steps.emit()
        return
    config = Config(
        host=args["url"], token=args["token"], auth_type="pat", retry_timeout_seconds=30
    )
    w = WorkspaceClient(config=config)
    name = args["run_name"]
    waiter = steps.run("submit", lambda: w.jobs.submit(run_name=name, tasks=[_task()]))
    run = steps.run("wait", lambda: waiter.result(timeout=WAIT))
    steps.run("wait.state", lambda: run.state.result_state.value)
    got = steps.run("get", lambda: w.jobs.get_run(run.run_id))
    steps.run("get.state", lambda: got.state.result_state.value)
    steps.run("get.task_run_id", lambda: got.tasks[0].run_id)
    output = steps.run("get_run_output", lambda: w.jobs.get_run_output(got.tasks[0].run_id))
    steps.run("get_run_output.state", lambda: output.metadata.state.result_state.value)
    listed = steps.run("list", lambda: [r.run_id for r in w.jobs.list_runs(limit=25)])
    steps.run("list.contains", lambda: run.run_id in listed)
    long_name = name + "-cancel"  # runs for minutes in the harness: the cancel finds it running
    other = steps.run("submit.second", lambda: w.jobs.submit(run_name=long_name, tasks=[_task()]))
    steps.run("cancel", lambda: w.jobs.cancel_run(other.run_id).result(timeout=WAIT).run_id)
    steps.run("cancel.state", lambda: w.jobs.get_run(other.run_id).state.result_state.value)
    steps.emit()


if __name__ == "__main__":
    main()
