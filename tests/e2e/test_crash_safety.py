"""Crash safety: SIGKILL the gateway process while it works; no run is lost, none is doubled.

The gateway (``lakegate serve``) and the Databricks emulator (``lakegate emulator
databricks``) run as real processes on loopback. The gateway is killed with SIGKILL, so no
cleanup runs, and started again on the same port and ledger; the emulator lives on, as a real
workspace would, and remembers every run and idempotency token it was ever sent.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from gateway.cli.client import LakegateClient, Run, Submitted, is_terminal
from gateway.cli.errors import GatewayClientError, GatewayUnreachable
from gateway.cli.retry import ClientRetry, RetryNotice
from tests.e2e.processes import ManagedProcess, ProcessGroup, free_port, lakegate_command
from tests.e2e.specs import spec
from tests.fixtures.gateway import namespace_name, stack_configs

# Short enough that 300 runs end within seconds of their submission.
LIFECYCLE = {"pending_seconds": 0.2, "running_seconds": 1.0, "terminating_seconds": 0.2}
# Quotas far above what the tests send: a 429 from admission is not what is under test.
GENEROUS_QUOTAS = {
    "max_active_runs": 10_000,
    "max_queued_runs": 10_000,
    "submissions_per_minute": 100_000,
    "burst": 1_000,  # the most a bucket holds; the rate refills it far faster than used
}
# A scheduler that outlives gateway restarts: it keeps retrying, with the same key, for
# longer than a restart takes.
RIDE_OUT_RESTARTS = ClientRetry(
    attempts=10_000, initial_wait=0.05, max_wait=0.5, max_delay=40.0, max_retry_after=2.0
)


@dataclass
class ProcessStack:
    """The emulator and the gateway as processes, and an HTTP session to reach both."""

    session: aiohttp.ClientSession
    emulator: ManagedProcess
    gateway: ManagedProcess
    emulator_url: str
    gateway_url: str
    principals: dict[str, str]
    restart_seconds: list[float] = field(default_factory=list)

    def client(self, **kwargs: Any) -> LakegateClient:
        return LakegateClient(self.gateway_url, session=self.session, **kwargs)

    async def crash_gateway(self) -> None:
        """SIGKILL the gateway, then start it again on the same port and ledger."""
        await self.gateway.kill()
        self.restart_seconds.append(await self.gateway.start(self.session))

    async def emulator_runs(self) -> list[dict[str, Any]]:
        """Every run the emulated workspace ever created."""
        async with self.session.get(f"{self.emulator_url}/emulator/runs") as response:
            response.raise_for_status()
            body = await response.json()
        runs: list[dict[str, Any]] = body["runs"]
        return runs

    async def submits_answered(self) -> int:
        """How many runs/submit calls the emulator answered 200, replays of a token included."""
        async with self.session.get(f"{self.emulator_url}/emulator/stats") as response:
            response.raise_for_status()
            stats = await response.json()
        return sum(
            row["count"]
            for row in stats["requests"]
            if row["path"].endswith("/jobs/runs/submit") and row["status"] == "200"
        )

    async def add_fault(self, **fault: Any) -> None:
        async with self.session.post(f"{self.emulator_url}/emulator/faults", json=fault) as resp:
            resp.raise_for_status()

    async def clear_faults(self) -> None:
        async with self.session.delete(f"{self.emulator_url}/emulator/faults") as response:
            response.raise_for_status()


StackStarter = Callable[..., Awaitable[ProcessStack]]


def _write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
async def process_stack(tmp_path: Path) -> AsyncIterator[StackStarter]:
    """Start the emulator and the gateway as processes; both are killed at teardown."""
    group = ProcessGroup(tmp_path)
    session = aiohttp.ClientSession()

    async def start(
        namespaces: int,
        *,
        databricks: dict[str, Any] | None = None,
        poller: dict[str, Any] | None = None,
        webhooks: tuple[dict[str, Any], dict[str, Any]] | None = None,
    ) -> ProcessStack:
        emulator_raw, gateway_raw, principals = stack_configs(
            namespaces, tmp_path=tmp_path, emulator={"lifecycle": LIFECYCLE}
        )
        emulator_port = free_port()
        gateway_port = free_port(besides={emulator_port})
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        gateway_raw["server"] = {"host": "127.0.0.1", "port": gateway_port}
        gateway_raw["logging"] = {"level": "info", "format": "json"}
        gateway_raw["workspaces"] = {"emulated": {"host": emulator_url}}
        gateway_raw["databricks"] = {**gateway_raw["databricks"], **(databricks or {})}
        gateway_raw["poller"] = {**gateway_raw["poller"], **(poller or {})}
        gateway_raw["tenants"]["defaults"]["quotas"] = GENEROUS_QUOTAS
        if webhooks is not None:  # (gateway.yaml's section, the tenants' defaults block)
            gateway_raw["webhooks"] = webhooks[0]
            gateway_raw["tenants"]["defaults"]["webhooks"] = webhooks[1]
        emulator_yaml = _write_yaml(tmp_path / "emulator.yaml", emulator_raw)
        gateway_yaml = _write_yaml(tmp_path / "gateway.yaml", gateway_raw)
        emulator = group.add(
            "emulator",
            lakegate_command(
                *("emulator", "databricks", "--config", str(emulator_yaml)),
                *("--port", str(emulator_port), "--log-level", "info"),
            ),
            probe_url=f"{emulator_url}/emulator/runs",
            # Any answer but a server error means it is listening and routing.
            ready_when=lambda status: status < 500,
        )
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        gateway = group.add(
            "gateway",
            lakegate_command("serve", "--config", str(gateway_yaml)),
            probe_url=f"{gateway_url}/readyz",
        )
        await emulator.start(session)
        await gateway.start(session)
        return ProcessStack(session, emulator, gateway, emulator_url, gateway_url, principals)

    try:
        yield start
    finally:
        try:
            await group.aclose()
        finally:
            await session.close()


@dataclass(frozen=True)
class Planned:
    namespace: str
    name: str
    key: str


async def ledger_runs(client: LakegateClient, namespaces: Iterable[str]) -> dict[int, Run]:
    """Every run in the ledger of the given namespaces, by ledger id."""
    runs: dict[int, Run] = {}
    for namespace in namespaces:
        async for run in client.iter_runs(namespace, page_size=500):
            runs[int(run["id"])] = run
    return runs


async def wait_until_ended(
    client: LakegateClient, namespaces: Iterable[str], *, within: float
) -> dict[int, Run]:
    """The whole ledger once no run in it is active, or as it is after ``within`` seconds."""
    wanted = list(namespaces)
    deadline = time.monotonic() + within
    while True:
        runs = await ledger_runs(client, wanted)
        if all(is_terminal(r["state"]) for r in runs.values()) or time.monotonic() > deadline:
            return runs
        await asyncio.sleep(0.25)


def not_ended(runs: dict[int, Run]) -> dict[int, str]:
    return {run_id: run["state"] for run_id, run in runs.items() if not is_terminal(run["state"])}


@pytest.mark.e2e
async def test_sigkilled_gateway_loses_no_run_and_doubles_none(
    process_stack: StackStarter,
) -> None:
    """300 runs submitted across 4 SIGKILLs all end, each with exactly one Databricks run."""
    namespaces, submissions, concurrency = 6, 300, 30
    kill_after_answers = (50, 150, 250)
    stack = await process_stack(namespaces)
    retries: list[RetryNotice] = []
    client = stack.client(timeout=20.0, retry=RIDE_OUT_RESTARTS, on_retry=retries.append)
    # Each submission has its own key and run name, the way a scheduler's task instance has.
    plan = [
        Planned(namespace_name(i % namespaces), f"crash-{i:03d}", f"sched-{uuid.uuid4()}")
        for i in range(submissions)
    ]
    answered: dict[str, Submitted] = {}
    failed: dict[str, GatewayClientError] = {}
    progress = asyncio.Condition()
    gate = asyncio.Semaphore(concurrency)

    async def submit(item: Planned) -> None:
        try:
            async with gate:
                answered[item.key] = await client.submit(
                    item.namespace,
                    spec(item.name, "SUCCESS", seconds=1.0),
                    idempotency_key=item.key,
                )
        except GatewayClientError as exc:
            failed[item.key] = exc
        async with progress:
            progress.notify_all()

    async def answers(count: int) -> None:
        async with progress:
            await progress.wait_for(lambda: len(answered) + len(failed) >= count)

    async def kill_while_submitting() -> None:
        for count in kill_after_answers:
            await answers(count)
            await stack.crash_gateway()

    started = time.monotonic()
    async with asyncio.timeout(45), asyncio.TaskGroup() as tasks:
        tasks.create_task(kill_while_submitting())
        for item in plan:
            tasks.create_task(submit(item))
    submitted_in = time.monotonic() - started
    # Once more with every answer in: runs are now PENDING or RUNNING in Databricks and only
    # the restarted poller can follow them to their end.
    await stack.crash_gateway()
    # Runs end ~2 s after this restart. The bound stays below the 15 s after which the poller
    # would take up a SUBMITTING run anyway, so a start-up that forgot them fails the test.
    final = await wait_until_ended(client, {p.namespace for p in plan}, within=10)
    remote = await stack.emulator_runs()
    submits = await stack.submits_answered()
    print(
        f"submitted in {submitted_in:.1f} s, all ended after {time.monotonic() - started:.1f} s; "
        f"restarts took {[round(s, 2) for s in stack.restart_seconds]} s; "
        f"answers {Counter(s.status for s in answered.values())}; {len(retries)} client retries; "
        f"{submits} runs/submit answered for {len(remote)} runs created"
    )

    # The test did crash the gateway under load: calls in flight were cut and retried.
    assert stack.gateway.starts == len(kill_after_answers) + 2
    assert any(isinstance(notice.error, GatewayUnreachable) for notice in retries)
    # Every submission was accepted in the end, because the client retried with its key ...
    assert not failed, {key: str(exc) for key, exc in list(failed.items())[:5]}
    assert {s.status for s in answered.values()} <= {200, 201, 202}
    by_key = {key: int(s.run["id"]) for key, s in answered.items()}
    # ... and no key became two ledger runs, nor did any ledger run appear without a key.
    assert len(set(by_key.values())) == len(by_key) == submissions
    assert set(final) == set(by_key.values())
    # No run is stuck: each ended, the way the emulator was told to end it.
    stuck = not_ended(final)
    assert not stuck, f"{len(stuck)} runs have not ended: {stuck}"
    assert Counter(run["state"] for run in final.values()) == Counter({"SUCCEEDED": submissions})
    # No Databricks run was created twice, whatever the crash interrupted.
    tokens = Counter(r["idempotency_token"] for r in remote)
    assert [t for t, n in tokens.items() if n > 1] == []
    names = Counter(r["run_name"] for r in remote)
    assert [name for name, n in names.items() if n > 1] == []
    assert len(remote) == submissions
    # Each accepted run is the one Databricks run made for it, by its namespace's principal.
    by_remote_id = {r["run_id"]: r for r in remote}
    for item in plan:
        run_id = by_key[item.key]
        run = final[run_id]
        assert run["namespace"] == item.namespace
        made = by_remote_id[run["databricks_run_id"]]
        assert made["run_name"] == item.name
        assert made["principal"] == stack.principals[item.namespace]
        assert made["idempotency_token"].endswith(f"-{run_id}")
    # The test did reach the dangerous moment: some crashes fell after Databricks made a run
    # and before the ledger recorded it, so the restarted gateway sent those tokens again.
    assert submits > len(remote)


@pytest.mark.parametrize(
    ("fault", "runs_before_crash"),
    [
        # Every attempt is held, then cut by the gateway's timeout: Databricks made nothing.
        pytest.param({"action": "hang", "seconds": 60}, 0, id="submit-hangs"),
        # Every attempt makes (then replays) the run, and the answer is lost on the way back.
        pytest.param({"action": "drop", "after": True}, 1, id="answer-lost"),
    ],
)
async def test_run_answered_202_survives_a_sigkill_and_lands_once(
    process_stack: StackStarter, fault: dict[str, Any], runs_before_crash: int
) -> None:
    """A run answered 202 SUBMITTING, then SIGKILLed, ends with exactly one Databricks run."""
    # The gateway answers 202 once Databricks has not confirmed the submission in 0.5 s.
    stack = await process_stack(1, poller={"inline_submit_seconds": 0.5})
    await stack.add_fault(path="/api/*/jobs/runs/submit", probability=1.0, **fault)
    client = stack.client(timeout=20.0, retry=RIDE_OUT_RESTARTS)
    namespace = namespace_name(0)
    job = spec("accepted-then-crashed", "SUCCESS", seconds=1.0)

    accepted = await client.submit(namespace, job, idempotency_key="sched-task-1")
    assert (accepted.status, accepted.run["state"]) == (202, "SUBMITTING")
    await stack.gateway.kill()
    # The crash left the run SUBMITTING in the ledger, whether or not Databricks made it.
    assert len(await stack.emulator_runs()) == runs_before_crash
    await stack.clear_faults()
    await stack.gateway.start(stack.session)

    run_id = int(accepted.run["id"])
    final = (await wait_until_ended(client, [namespace], within=15))[run_id]
    assert final["state"] == "SUCCEEDED"
    remote = await stack.emulator_runs()
    assert len(remote) == 1
    assert remote[0]["run_id"] == final["databricks_run_id"]
    assert remote[0]["idempotency_token"].endswith(f"-{run_id}")
    assert remote[0]["principal"] == stack.principals[namespace]
    # The scheduler asking again with its key is told about the same run, not given another.
    again = await client.submit(namespace, job, idempotency_key="sched-task-1")
    assert (again.status, again.run["id"]) == (200, accepted.run["id"])
