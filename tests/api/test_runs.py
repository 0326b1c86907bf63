"""The /v1 run routes over a real socket: status codes, headers, bodies and validation."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.model import RunState
from tests.api.conftest import SPEC, Client, ClientFactory
from tests.api.fakes import FakeRunService
from tests.api.schema import assert_matches, assert_problem

RUNS = "/v1/namespaces/team-a/runs"


async def submit(client: Client, body: Any = None, **headers: str) -> Any:
    return await client.post(RUNS, json={"spec": SPEC} if body is None else body, headers=headers)


# --- submit ---------------------------------------------------------------------------------


async def test_submit_of_a_queued_run_answers_202_with_location(client: Client) -> None:
    """A run accepted but not yet at Databricks answers 202 and points at itself."""
    resp = await submit(client, {"spec": SPEC, "labels": {"team": "etl"}})
    body = await resp.json()
    assert resp.status == 202
    assert resp.headers["Location"] == f"{RUNS}/{body['id']}"
    assert body["state"] == "QUEUED"
    assert body["labels"] == {"team": "etl"}
    assert_matches("Run", body)


async def test_submit_that_reached_databricks_answers_201(make_client: ClientFactory) -> None:
    """A run Databricks already accepted answers 201 with its Databricks run id."""
    client = await make_client(FakeRunService(start_state=RunState.PENDING))
    resp = await submit(client)
    body = await resp.json()
    assert resp.status == 201
    assert body["databricks_run_id"] is not None
    assert resp.headers["Location"] == f"{RUNS}/{body['id']}"


async def test_submit_while_submitting_answers_202(make_client: ClientFactory) -> None:
    """A run caught between the ledger and Databricks is still 202."""
    client = await make_client(FakeRunService(start_state=RunState.SUBMITTING))
    resp = await submit(client)
    assert resp.status == 202


async def test_idempotent_replay_answers_200_with_the_same_run(client: Client) -> None:
    """The same Idempotency-Key and body return the first run with 200."""
    first = await (await submit(client, **{"Idempotency-Key": "job-42"})).json()
    resp = await submit(client, **{"Idempotency-Key": "job-42"})
    body = await resp.json()
    assert resp.status == 200
    assert body["id"] == first["id"]
    assert resp.headers["Location"] == f"{RUNS}/{first['id']}"


async def test_idempotency_key_with_another_body_is_a_409_problem(client: Client) -> None:
    """Reusing a key with a different body is a Conflict, as problem+json."""
    await submit(client, **{"Idempotency-Key": "job-42"})
    resp = await submit(
        client, {"spec": {**SPEC, "run_name": "other"}}, **{"Idempotency-Key": "job-42"}
    )
    assert resp.status == 409
    assert resp.content_type == "application/problem+json"
    assert_problem(await resp.json(), 409, "conflict")


async def test_the_single_task_shape_is_accepted_as_sent(
    client: Client, service: FakeRunService
) -> None:
    """A top-level task type with its cluster and no tasks[] is a run, kept as it came."""
    spec = {
        "run_name": "classic",
        "spark_jar_task": {"main_class_name": "etl.Main"},
        "new_cluster": {"spark_version": "15.4.x-scala2.12", "num_workers": 1},
    }
    resp = await submit(client, {"spec": spec})
    assert resp.status == 202, await resp.text()
    assert service.runs[(await resp.json())["id"]].spec == spec


async def test_nulls_are_absent_in_the_body_and_the_spec(
    client: Client, service: FakeRunService
) -> None:
    """null callback_url, labels and spec fields read as unset, at every depth."""
    spec = {**SPEC, "git_source": None, "tasks": [{**SPEC["tasks"][0], "sql_task": None}]}
    resp = await submit(client, {"spec": spec, "labels": None, "callback_url": None})
    assert resp.status == 202, await resp.text()
    assert service.runs[(await resp.json())["id"]].spec == SPEC


async def test_callback_url_is_kept(client: Client) -> None:
    """An https callback_url is stored and shown on the run."""
    resp = await submit(client, {"spec": SPEC, "callback_url": "https://hooks.example.com/x"})
    assert (await resp.json())["callback_url"] == "https://hooks.example.com/x"


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({}, "spec", "required"),
        ({"spec": {"run_name": "x"}}, "spec", "tasks"),
        ({"spec": {"tasks": []}}, "spec", "tasks"),
        ({"spec": {"tasks": ["not an object"]}}, "spec", "tasks"),
        ({"spec": {**SPEC, "notebook_task": {}}}, "spec", "both 'tasks'"),
        ({"spec": {"notebook_task": "x"}}, "spec", "must be an object"),
        ({"spec": [1]}, "spec", "object"),
        ({"spec": SPEC, "spekc": 1}, "spekc", "unknown field 'spekc'"),
        ({"spec": SPEC, "callback_url": "ftp://example.com/"}, "callback_url", "http"),
        ({"spec": SPEC, "callback_url": "https://"}, "callback_url", "http"),
        ({"spec": SPEC, "labels": {"bad key!": "v"}}, "labels", "label keys"),
        ({"spec": SPEC, "labels": {"k": "v" * 257}}, "labels.k", "256"),
        ({"spec": SPEC, "labels": {"k": 1}}, "labels.k", "string"),
        ({"spec": SPEC, "labels": {f"k{i}": "v" for i in range(33)}}, "labels", "32 labels"),
        ([{"spec": SPEC}], "body", "JSON object"),
    ],
)
async def test_invalid_submission_is_a_400_naming_the_field(
    client: Client, body: Any, field: str, says: str
) -> None:
    """Each invalid body answers 400 with the field at fault and a fixable detail."""
    resp = await submit(client, body)
    problem = await resp.json()
    assert resp.status == 400
    assert_problem(problem, 400, "invalid-request")
    assert problem["field"].startswith(field)
    assert says in problem["detail"]


async def test_many_invalid_fields_make_a_bounded_detail(client: Client) -> None:
    """Hundreds of bad labels are summarised, not listed one by one."""
    labels = {f"bad key {i}": "v" for i in range(300)}
    resp = await submit(client, {"spec": SPEC, "labels": labels})
    problem = await resp.json()
    assert resp.status == 400
    assert problem["detail"].endswith("more problems")
    assert len(problem["detail"]) < 1000


async def test_spec_nested_too_deeply_is_refused(client: Client) -> None:
    """A spec nesting deeper than the bound is a 400, not a recursion error."""
    deep: Any = {}
    for _ in range(40):
        deep = {"x": deep}
    resp = await submit(client, {"spec": {"tasks": [deep]}})
    assert resp.status == 400
    assert "deeper" in (await resp.json())["detail"]


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b"\xff\xfe\x00", b'{"spec": NaN}', b'{"spec": 1e999}', b"[" * 100_000],
)
async def test_body_that_is_not_json_is_a_400(client: Client, raw: bytes) -> None:
    """Malformed JSON, bad encodings, NaN, infinities and absurd nesting say 'not JSON'."""
    resp = await client.post(RUNS, data=raw, headers={"Content-Type": "application/json"})
    problem = await resp.json()
    assert resp.status == 400
    assert_problem(problem, 400, "invalid-request")
    assert "not JSON" in problem["detail"]


@pytest.mark.parametrize("key", ["", "has space", "é", "x" * 256, "tab\tkey"])
async def test_bad_idempotency_key_is_a_400(client: Client, key: str) -> None:
    """Idempotency-Key must be 1..255 visible ASCII characters."""
    resp = await client.post(RUNS, json={"spec": SPEC}, headers={"Idempotency-Key": key})
    problem = await resp.json()
    assert resp.status == 400
    assert problem["field"] == "Idempotency-Key"


async def test_repeated_idempotency_key_header_is_a_400(client: Client) -> None:
    """Two Idempotency-Key headers are ambiguous and refused."""
    headers = [("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    resp = await client.post(RUNS, json={"spec": SPEC}, headers=headers)
    assert resp.status == 400


@pytest.mark.parametrize("namespace", ["Team-A", "-team", "team_a", "a" * 64, "t%C3%A9am"])
async def test_bad_namespace_is_a_400_saying_what_a_name_is(client: Client, namespace: str) -> None:
    """A namespace that is not a Kubernetes name answers 400 explaining valid names."""
    resp = await client.post(f"/v1/namespaces/{namespace}/runs", json={"spec": SPEC})
    problem = await resp.json()
    assert resp.status == 400
    assert problem["field"] == "namespace"
    assert "lowercase letters" in problem["detail"]


# --- get ------------------------------------------------------------------------------------


async def test_get_returns_the_run_with_its_history(client: Client) -> None:
    """GET of a run answers 200 with every transition, oldest first."""
    created = await (await submit(client)).json()
    resp = await client.get(f"{RUNS}/{created['id']}")
    body = await resp.json()
    assert resp.status == 200
    assert body["history"] == [
        {"from": None, "to": "QUEUED", "at": body["created_at"], "message": "entered QUEUED"}
    ]
    assert_matches("RunDetail", body)


async def test_run_of_another_namespace_is_not_found(client: Client) -> None:
    """A run id from another namespace is a 404, not a leak."""
    created = await (await submit(client)).json()
    resp = await client.get(f"/v1/namespaces/team-b/runs/{created['id']}")
    assert resp.status == 404
    assert_problem(await resp.json(), 404, "not-found")


@pytest.mark.parametrize("run_id", ["0", "-1", "abc", "1.5", "01", "9223372036854775808", "\u0661"])
async def test_bad_run_id_is_a_400(client: Client, run_id: str) -> None:
    """A run id that is not a positive int64 answers 400 naming run_id."""
    resp = await client.get(f"{RUNS}/{run_id}")
    problem = await resp.json()
    assert resp.status == 400
    assert problem["field"] == "run_id"


async def test_largest_int64_run_id_is_accepted_as_a_lookup(client: Client) -> None:
    """The int64 maximum is a valid id: it is looked up (404), not refused (400)."""
    resp = await client.get(f"{RUNS}/9223372036854775807")
    assert resp.status == 404


# --- list -----------------------------------------------------------------------------------


async def test_list_returns_runs_of_the_namespace_only(client: Client) -> None:
    """The list holds this namespace's runs and a null cursor on the last page."""
    await submit(client)
    await client.post("/v1/namespaces/team-b/runs", json={"spec": SPEC})
    resp = await client.get(RUNS)
    body = await resp.json()
    assert resp.status == 200
    assert [r["namespace"] for r in body["runs"]] == ["team-a"]
    assert body["next_cursor"] is None
    assert_matches("RunPage", body)


async def test_list_pages_with_limit_and_cursor(client: Client) -> None:
    """limit bounds a page and next_cursor fetches the rest."""
    for _ in range(3):
        await submit(client)
    first = await (await client.get(RUNS, params={"limit": "2"})).json()
    rest = await (await client.get(RUNS, params={"cursor": first["next_cursor"]})).json()
    assert [r["id"] for r in first["runs"]] == [3, 2]
    assert [r["id"] for r in rest["runs"]] == [1]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    "query",
    [
        [("state", "QUEUED"), ("state", "RUNNING")],
        [("state", "RUNNING,QUEUED")],
        [("state", "queued")],
    ],
)
async def test_list_filters_by_state_repeated_or_comma_separated(
    client: Client, query: list[tuple[str, str]]
) -> None:
    """state may be repeated, comma-separated or lowercase."""
    await submit(client)
    body = await (await client.get(RUNS, params=query)).json()
    assert len(body["runs"]) == 1


async def test_list_state_filter_excludes_other_states(client: Client) -> None:
    """Runs in states outside the filter are left out."""
    await submit(client)
    body = await (await client.get(RUNS, params={"state": "RUNNING"})).json()
    assert body["runs"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"state": "BOGUS"}, "state"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"states": "RUNNING"}, "states"),
        ({"cursor": "x" * 1025}, "cursor"),
    ],
)
async def test_bad_list_parameters_are_a_400(
    client: Client, query: dict[str, str], field: str
) -> None:
    """Bad state, limit, cursor or unknown parameters answer 400 naming the parameter."""
    resp = await client.get(RUNS, params=query)
    problem = await resp.json()
    assert resp.status == 400
    assert problem["field"] == field


async def test_cursor_the_service_refuses_is_a_400(client: Client) -> None:
    """The service's own InvalidRequest for a foreign cursor reaches the caller as 400."""
    resp = await client.get(RUNS, params={"cursor": "not-ours"})
    assert resp.status == 400
    assert (await resp.json())["field"] == "cursor"


# --- cancel ---------------------------------------------------------------------------------


async def test_cancel_answers_202_with_cancel_requested(client: Client) -> None:
    """Cancel answers 202 and the run shows cancel_requested."""
    created = await (await submit(client)).json()
    resp = await client.post(f"{RUNS}/{created['id']}/cancel")
    body = await resp.json()
    assert resp.status == 202
    assert body["cancel_requested"] is True
    assert_matches("Run", body)


async def test_cancel_of_unknown_run_is_a_404(client: Client) -> None:
    """Cancelling a run that does not exist is a 404 problem."""
    resp = await client.post(f"{RUNS}/77/cancel")
    assert resp.status == 404
    assert_problem(await resp.json(), 404, "not-found")
