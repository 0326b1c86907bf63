"""idempotency_token through the facade: a retry of the same request always reattaches to the
first run (whatever became of it, whatever the namespace's quota says now); the same token
with another body is a 409, where Databricks would hand back the original run."""

from __future__ import annotations

import json
from typing import Any

from tests.api.compat.conftest import TEAM_A, CompatStack
from tests.api.compat.test_http import assert_databricks_error, call, stack_settled
from tests.e2e.specs import spec
from tests.fixtures.gateway import StackFactory

SUBMIT = "/api/2.1/jobs/runs/submit"


def airflow_body(name: str) -> dict[str, Any]:
    return {**spec(name, seconds=0.1), "idempotency_token": f"airflow-{name}-try"}


async def test_a_retry_of_the_same_body_reattaches_even_after_the_run_ended(
    compat_stack: CompatStack,
) -> None:
    """Airflow retrying its task sends the same body: the first run's id, one Databricks run,
    before and after that run ended; key order and nulls for unset fields change nothing."""
    stack = compat_stack
    token = stack.token(TEAM_A)
    body = airflow_body("retry")
    resp, first = await call(stack, "POST", SUBMIT, token=token, json=body)
    assert resp.status == 200, first
    shuffled = json.loads(json.dumps(dict(reversed(list(body.items())))))
    shuffled["git_source"] = None
    resp, again = await call(stack, "POST", SUBMIT, token=token, json=shuffled)
    assert (resp.status, again) == (200, first)
    await stack_settled(stack, first["run_id"])
    resp, later = await call(stack, "POST", SUBMIT, token=token, json=body)
    assert (resp.status, later) == (200, first)
    assert len(stack.remote_runs("retry")) == 1


async def test_the_same_token_with_another_body_is_a_conflict(compat_stack: CompatStack) -> None:
    """lakegate answers 409 RESOURCE_CONFLICT rather than Databricks' original run: a client
    that changed its request must not believe the new one ran."""
    stack = compat_stack
    token = stack.token(TEAM_A)
    body = airflow_body("changed")
    resp, first = await call(stack, "POST", SUBMIT, token=token, json=body)
    assert resp.status == 200, first
    changed = {**body, "run_name": "changed-again"}
    resp, answer = await call(stack, "POST", SUBMIT, token=token, json=changed)
    assert_databricks_error(resp, answer, 409, "RESOURCE_CONFLICT")
    assert "idempotency_token 'airflow-changed-try' was already used" in answer["message"]
    assert len(stack.remote_runs("changed")) == 1
    assert stack.remote_runs("changed-again") == []


async def test_a_retry_reattaches_when_the_namespace_is_over_its_rate(
    gateway_stack_factory: StackFactory,
) -> None:
    """The replay is answered before any quota: a burst of one is spent by the first submit,
    its retry still gets the run, and only a new request hears 429."""
    stack = await gateway_stack_factory(
        namespaces=1, quotas={"submissions_per_minute": 1, "burst": 1}
    )
    headers = {"X-Lakegate-Namespace": "team-00"}

    async def submit(body: dict[str, Any]) -> tuple[int, Any]:
        async with stack.session.post(stack.url + SUBMIT, json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    status, first = await submit(airflow_body("rate"))
    assert status == 200, first
    assert await submit(airflow_body("rate")) == (200, first)
    status, refused = await submit(airflow_body("other"))
    assert (status, refused["error_code"]) == (429, "REQUEST_LIMIT_EXCEEDED")
