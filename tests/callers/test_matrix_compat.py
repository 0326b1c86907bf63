"""The callers matrix on the Databricks-compatible facade, /api/2.1 and /api/2.2 alike.

The same ten namespaces and 18 callers as ``test_matrix`` (ServiceAccounts, a granted
scheduler, a selector grant, API keys, JWTs, and three that never get in), each against each
namespace, named in ``X-Lakegate-Namespace``, on submit, get, cancel, list and get-output of
both versions. Get and get-output aim at a run of that namespace that has ended with an output,
cancel at one still running. Refused calls go first, and must leave no trace: exactly 401 or
403 in Databricks' error shape, no run in the emulator, no cancellation. Then the allowed ones
must all succeed, each submit making exactly one run, in that namespace, run by its principal.

A caller that may act for one namespace only may leave the header out; one that may act for
several must name one, and one without a good credential hears 401 before anything else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.appkeys import RUNS
from gateway.emulator.kubernetes import KubeApiServer
from tests.callers.conftest import CallersStack
from tests.callers.issuer import JwtIssuer
from tests.callers.test_matrix import NAMESPACES, Who, callers_section, matrix_callers
from tests.e2e.specs import spec
from tests.fixtures.gateway import GatewayStack

VERSIONS = ("2.1", "2.2")
ENDPOINTS = ("submit", "get", "cancel", "list", "get-output")
NAMESPACE_HEADER = "X-Lakegate-Namespace"
ERROR_CODES = {400: "INVALID_PARAMETER_VALUE", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}
ENDED = {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}
# What a header-less call acts for: the caller's own namespace, or its only one.
HOME = {**{f"sa-{ns}": ns for ns in NAMESPACES}, "jwt-repo": "team-06", "jwt-ns": "team-07"}


def other_than(ns: str) -> str:
    return NAMESPACES[(NAMESPACES.index(ns) + 1) % len(NAMESPACES)]


def run_spec(name: str, *, seconds: float, output: str | None = None) -> dict[str, Any]:
    body = spec(name, seconds=seconds)
    if output is not None:
        body["tasks"][0]["notebook_task"]["base_parameters"]["lakegate_emulator_output"] = output
    return body


@dataclass(frozen=True)
class Seeds:
    """Per namespace: a run that ended with an output (get, get-output), one still running
    (cancel)."""

    done: dict[str, int]
    live: dict[str, int]

    def names(self) -> set[str]:
        return {f"seed.{kind}.{ns}" for kind in ("done", "live") for ns in NAMESPACES}

    def of(self, ns: str) -> set[int]:
        return {self.done[ns], self.live[ns]}


@dataclass(frozen=True)
class Call:
    """One facade request: ``header`` is X-Lakegate-Namespace (None leaves it out), ``target``
    the namespace whose seed get, cancel and get-output aim at."""

    who: Who
    version: str
    endpoint: str
    header: str | None
    target: str

    @property
    def name(self) -> str:
        """The run name a submit sends."""
        return f"m{self.version}.{self.who.name}.{self.header or 'own'}"

    def run_id(self, seeds: Seeds) -> int:
        return (seeds.live if self.endpoint == "cancel" else seeds.done)[self.target]


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    content_type: str
    request_id: str | None


@dataclass
class Facade:
    stack: GatewayStack
    http: aiohttp.ClientSession
    seeds: Seeds
    limit: asyncio.Semaphore

    async def send(self, c: Call) -> Answer:
        headers = dict(c.who.headers)
        if c.header is not None:
            headers[NAMESPACE_HEADER] = c.header
        kwargs: dict[str, Any] = {}
        if c.endpoint == "submit":
            kwargs["json"] = run_spec(c.name, seconds=0.2)
        elif c.endpoint == "cancel":
            kwargs["json"] = {"run_id": c.run_id(self.seeds)}
        elif c.endpoint == "list":
            kwargs["params"] = {"limit": "25"}
        else:
            kwargs["params"] = {"run_id": str(c.run_id(self.seeds))}
        method = "POST" if c.endpoint in ("submit", "cancel") else "GET"
        url = f"{self.stack.url}/api/{c.version}/jobs/runs/{c.endpoint}"
        async with self.limit, self.http.request(method, url, headers=headers, **kwargs) as r:
            body = await r.json(content_type=None)
            return Answer(r.status, body, r.content_type, r.headers.get("X-Request-Id"))

    async def send_all(self, calls: Sequence[Call]) -> list[tuple[Call, Answer]]:
        answers = await asyncio.gather(*(self.send(c) for c in calls))
        return list(zip(calls, answers, strict=True))

    def remote_names(self) -> list[str]:
        return sorted(run["run_name"] for run in self.stack.emulator.runs())

    async def assert_untouched(self) -> None:
        """No run but the seeds reached Databricks, and no live seed was cancelled or asked
        to be."""
        assert self.remote_names() == sorted(self.seeds.names())
        remote = {run["run_name"]: run["life_cycle_state"] for run in self.stack.emulator.runs()}
        for ns in NAMESPACES:
            assert remote[f"seed.live.{ns}"] in {"PENDING", "RUNNING"}, (ns, remote)
            run = await self.stack.app[RUNS].get(ns, self.seeds.live[ns])
            assert not run.cancel_requested, ns

    async def assert_submitted(self, submitted: Sequence[tuple[Call, str, int]]) -> None:
        """Each submit (call, namespace, run id) reached Databricks once, as that namespace's
        principal, and the ledger holds it in that namespace; nothing else reached it."""
        remote: dict[str, list[dict[str, Any]]] = {}
        for run in self.stack.emulator.runs():
            remote.setdefault(run["run_name"], []).append(run)
        for c, ns, run_id in submitted:
            [one] = remote.get(c.name, [None])
            assert one is not None, c
            assert one["principal"] == self.stack.principal(ns), (c, one)
            ledger = await self.stack.app[RUNS].get(ns, run_id)
            assert ledger.databricks_run_id == one["run_id"], (c, ledger)
        names = self.seeds.names() | {c.name for c, _, _ in submitted}
        assert self.remote_names() == sorted(names)


async def seeded(stack: GatewayStack, http: aiohttp.ClientSession, callers: list[Who]) -> Facade:
    """Each namespace's own ServiceAccount submits its two runs; waits for the short ones to
    end, so that their output exists."""
    facade = Facade(stack, http, Seeds({}, {}), asyncio.Semaphore(16))
    for ns, who in zip(NAMESPACES, callers, strict=False):
        assert who.name == f"sa-{ns}"
        for kind, seconds in (("done", 0.05), ("live", 600.0)):
            headers = {**who.headers, NAMESPACE_HEADER: ns}
            body = run_spec(f"seed.{kind}.{ns}", seconds=seconds, output=f"out.{ns}")
            url = f"{stack.url}/api/2.2/jobs/runs/submit"
            async with http.post(url, json=body, headers=headers) as r:
                assert r.status == 200, await r.text()
                getattr(facade.seeds, kind)[ns] = int((await r.json())["run_id"])
    states: dict[str, str] = {}
    for _ in range(200):
        states = {run["run_name"]: run["life_cycle_state"] for run in stack.emulator.runs()}
        if all(states.get(f"seed.done.{ns}") in ENDED for ns in NAMESPACES):
            return facade
        await asyncio.sleep(0.05)
    raise AssertionError(f"the short seeds did not end: {states}")


def databricks_error(answer: Answer, status: int, message: str | None = None) -> str | None:
    """Why ``answer`` is not Databricks' error ``status`` in Databricks' shape, with
    ``message`` in its message; None if it is."""
    body = answer.body
    if answer.status != status:
        return f"status {answer.status}, not {status}: {body}"
    if answer.content_type != "application/json" or not isinstance(body, dict):
        return f"not a JSON object ({answer.content_type}): {body}"
    if body.get("error_code") != ERROR_CODES[status]:
        return f"error_code {body.get('error_code')!r}, not {ERROR_CODES[status]!r}"
    if not isinstance(body.get("message"), str) or message not in (None, body["message"]):
        return f"message {body.get('message')!r}, not {message!r}"
    details = body.get("details")
    if not details or details[0].get("request_id") != answer.request_id:
        return f"details do not carry the request id {answer.request_id!r}: {body}"
    return None


def success_problem(c: Call, ns: str, answer: Answer, seeds: Seeds) -> str | None:
    """Why an allowed call, acting for ``ns``, did not succeed as it should; None if it did."""
    body = answer.body
    if answer.status != 200 or not isinstance(body, dict):
        return f"status {answer.status}: {body}"
    if c.endpoint == "get":
        ok = (body.get("run_id"), body.get("run_name")) == (seeds.done[ns], f"seed.done.{ns}")
    elif c.endpoint == "get-output":
        ok = body.get("notebook_output", {}).get("result") == f"out.{ns}"
        ok = ok and body["metadata"].get("job_run_id") == seeds.done[ns]
    elif c.endpoint == "cancel":
        ok = body == {}
    elif c.endpoint == "submit":
        ok = isinstance(body.get("run_id"), int)
    else:
        ok = isinstance(body.get("runs", []), list)
    return None if ok else f"unexpected answer: {body}"


async def assert_allowed(
    facade: Facade, answered: Iterable[tuple[Call, Answer]], namespace_of: dict[str, str]
) -> None:
    """Every call succeeded for the namespace it acted for (``namespace_of`` for a call that
    named none); every submit made one run there; every list shows only that namespace's."""
    seeds = facade.seeds
    wrong = []
    submitted: list[tuple[Call, str, int]] = []
    listed: list[tuple[str, set[int]]] = []
    for c, answer in answered:
        ns = c.header or namespace_of[c.who.name]
        if problem := success_problem(c, ns, answer, seeds):
            wrong.append((c, problem))
        elif c.endpoint == "submit":
            submitted.append((c, ns, answer.body["run_id"]))
        elif c.endpoint == "list":
            listed.append((ns, {run["run_id"] for run in answer.body.get("runs", [])}))
    assert not wrong, wrong
    await facade.assert_submitted(submitted)
    ids = {ns: seeds.of(ns) | {i for _, n, i in submitted if n == ns} for ns in NAMESPACES}
    for ns, run_ids in listed:
        assert seeds.of(ns) <= run_ids <= ids[ns], (ns, run_ids)


async def test_every_caller_against_every_namespace_on_both_databricks_apis(
    callers_stack: CallersStack,
    kube: KubeApiServer,
    issuer: JwtIssuer,
    http: aiohttp.ClientSession,
) -> None:
    """18 callers x 10 namespaces x 5 endpoints x 2 versions: refused ones leave no trace,
    allowed ones all succeed."""
    stack = await callers_stack(callers_section(), namespaces=10, issuer=issuer)
    callers = matrix_callers(kube, issuer)
    facade = await seeded(stack, http, callers)
    plan = [
        Call(who, version, endpoint, ns, ns)
        for who in callers
        for ns in NAMESPACES
        for version in VERSIONS
        for endpoint in ENDPOINTS
    ]
    refused = [c for c in plan if c.target not in c.who.allowed]
    allowed = [c for c in plan if c.target in c.who.allowed]
    assert len(plan) == 1800
    assert len(allowed) == 2 * 5 * (10 + 5 + 3 + 2 + 5 + 1 + 1)

    # Refused first, so that anything they did would still show.
    answered = await facade.send_all(refused)
    wrong = [(c, p) for c, a in answered if (p := databricks_error(a, c.who.refused))]
    assert not wrong, wrong
    await facade.assert_untouched()

    await assert_allowed(facade, await facade.send_all(allowed), {})
    assert sum(c.endpoint == "submit" for c in allowed) == 2 * 27


async def test_a_caller_of_one_namespace_may_leave_the_header_out(
    callers_stack: CallersStack,
    kube: KubeApiServer,
    issuer: JwtIssuer,
    http: aiohttp.ClientSession,
) -> None:
    """Without X-Lakegate-Namespace a caller of one namespace acts for it: every endpoint
    works there, and another namespace's run does not exist, even one the header could have
    reached. A caller of several namespaces is asked for the header; one without a good
    credential hears 401; the scheduler acts for its own namespace, which has no Databricks
    identity. Only the allowed submits reach Databricks."""
    stack = await callers_stack(callers_section(), namespaces=10, issuer=issuer)
    callers = matrix_callers(kube, issuer)
    facade = await seeded(stack, http, callers)
    singles = [who for who in callers if who.name in HOME]
    assert len(singles) == 12

    # Another namespace's run is no run at all; nothing of it is touched.
    plan = [
        Call(who, version, endpoint, None, other_than(HOME[who.name]))
        for who in singles
        for version in VERSIONS
        for endpoint in ("get", "cancel", "get-output")
    ]
    wrong = [
        (c, p)
        for c, a in await facade.send_all(plan)
        if (p := databricks_error(a, 400, f"Run {c.run_id(facade.seeds)} does not exist."))
    ]
    assert not wrong, wrong

    # Several namespaces, no header: asked for one. No good credential: 401 before that.
    plan = [
        Call(who, version, endpoint, None, "team-04")
        for who in callers
        if who.name not in HOME and who.name != "scheduler"
        for version in VERSIONS
        for endpoint in ENDPOINTS
    ]
    assert len(plan) == 5 * 2 * 5
    for c, answer in await facade.send_all(plan):
        status = 400 if c.who.refused == 403 else 401
        problem = databricks_error(answer, status)
        assert problem is None, (c, problem)
        assert status == 401 or NAMESPACE_HEADER in answer.body["message"], answer.body

    # The scheduler's own namespace (airflow) is no tenant: nothing to list, none to run as.
    scheduler = next(who for who in callers if who.name == "scheduler")
    for version in VERSIONS:
        answer = await facade.send(Call(scheduler, version, "submit", None, "team-01"))
        assert databricks_error(answer, 403) is None, answer.body
        answer = await facade.send(Call(scheduler, version, "list", None, "team-01"))
        assert (answer.status, answer.body) == (200, {"has_more": False})
    await facade.assert_untouched()

    # Their own namespace: everything works.
    plan = [
        Call(who, version, endpoint, None, HOME[who.name])
        for who in singles
        for version in VERSIONS
        for endpoint in ENDPOINTS
    ]
    await assert_allowed(facade, await facade.send_all(plan), HOME)


async def test_another_namespaces_task_run_is_no_run_either(
    callers_stack: CallersStack,
    kube: KubeApiServer,
    issuer: JwtIssuer,
    http: aiohttp.ClientSession,
) -> None:
    """A task run id (what runs/get shows in tasks[].run_id) of another namespace's run does
    not exist for get-output, as that run's own id does not."""
    stack = await callers_stack(callers_section(), namespaces=10, issuer=issuer)
    callers = matrix_callers(kube, issuer)
    facade = await seeded(stack, http, callers)
    [task_run_id] = next(
        run["task_run_ids"]
        for run in stack.emulator.runs()
        if run["run_name"] == "seed.done.team-02"
    )
    assert task_run_id != facade.seeds.done["team-02"]
    for who in callers[:2]:  # team-00 runs as a user, team-01 as a service principal
        for version in VERSIONS:
            url = f"{stack.url}/api/{version}/jobs/runs/get-output"
            params = {"run_id": str(task_run_id)}
            async with http.get(url, params=params, headers=who.headers) as r:
                answer = Answer(
                    r.status, await r.json(), r.content_type, r.headers.get("X-Request-Id")
                )
            assert "out.team-02" not in str(answer.body), (who.name, answer.body)
            message = f"Run {task_run_id} does not exist."
            assert databricks_error(answer, 400, message) is None, answer.body
