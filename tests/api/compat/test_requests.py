"""What Databricks clients send, read into lakegate's terms: bodies, queries, headers, paging."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway.api.compat import requests as cr
from gateway.api.compat.errors import CompatError
from gateway.api.compat.requests import ListQuery, PageToken
from gateway.model import RunState
from tests.api.compat.factories import EPOCH_MS, SPEC, ledger_run

# --- requests -----------------------------------------------------------------------------


def _body(**fields: Any) -> bytes:
    return json.dumps({**SPEC, **fields}).encode()


def test_submit_moves_the_idempotency_token_out_of_the_spec() -> None:
    """The client's token becomes the Idempotency-Key; the spec goes on without it."""
    request, token = cr.parse_submit(_body(idempotency_token="airflow-42"), [])
    assert token == "airflow-42"
    assert "idempotency_token" not in request.spec
    assert request.spec["tasks"] == SPEC["tasks"]
    assert request.labels == {}


def test_an_empty_token_is_no_token() -> None:
    """idempotency_token "" asks for no idempotency, as Databricks reads it."""
    assert cr.parse_submit(_body(idempotency_token=""), [])[1] is None


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (_body(idempotency_token="x" * 65), "INVALID_PARAMETER_VALUE", "at most 64"),
        (_body(idempotency_token=42), "INVALID_PARAMETER_VALUE", "idempotency_token"),
        (json.dumps({"run_name": "x"}).encode(), "INVALID_PARAMETER_VALUE", "task is required"),
        (_body(tasks=["main"]), "INVALID_PARAMETER_VALUE", "list of tasks"),
        (b"{not json", "MALFORMED_REQUEST", "failed to parse"),
        (b"[1, 2]", "MALFORMED_REQUEST", "expected a map"),
        (b'{"tasks": [{}], "x": NaN}', "MALFORMED_REQUEST", "failed to parse"),
        (b'{"tasks": [{}], "x": 1e999}', "MALFORMED_REQUEST", "failed to parse"),
        (_body(deep=json.loads("[" * 40 + "]" * 40)), "INVALID_PARAMETER_VALUE", "nests"),
        (_body(notebook_task={"notebook_path": "/x"}), "INVALID_PARAMETER_VALUE", "both"),
        (
            json.dumps({"notebook_task": {}, "spark_jar_task": {}}).encode(),
            "INVALID_PARAMETER_VALUE",
            "2 top-level task types",
        ),
        (json.dumps({"notebook_task": "/x"}).encode(), "INVALID_PARAMETER_VALUE", "object"),
        (json.dumps({"tasks": None}).encode(), "INVALID_PARAMETER_VALUE", "task is required"),
    ],
)
def test_submit_refusals_are_databricks_400s(body: bytes, code: str, needle: str) -> None:
    """Each broken submission is a 400 with Databricks' code and a message that says why."""
    with pytest.raises(CompatError) as caught:
        cr.parse_submit(body, [])
    assert (caught.value.status, caught.value.error_code) == (400, code)
    assert needle in caught.value.message


def test_labels_come_from_a_header_that_may_repeat() -> None:
    """X-Lakegate-Labels: comma-separated key=value pairs, over one or more headers."""
    assert cr.parse_labels(["team=etl, tier=gold", "app.kubernetes.io/name=x"]) == {
        "team": "etl",
        "tier": "gold",
        "app.kubernetes.io/name": "x",
    }


@pytest.mark.parametrize(
    "header", ["no-equals", "-bad=key", "k=" + "v" * 257, ",".join(f"k{i}=v" for i in range(33))]
)
def test_bad_labels_are_refused(header: str) -> None:
    """Malformed pairs, keys, values too long or too many labels: a 400."""
    with pytest.raises(CompatError):
        cr.parse_labels([header])


@pytest.mark.parametrize(("values", "expected"), [([], None), (["team-a"], "team-a")])
def test_the_namespace_header(values: list[str], expected: str | None) -> None:
    """X-Lakegate-Namespace is optional and, when sent, the namespace."""
    assert cr.parse_namespace(values) == expected


@pytest.mark.parametrize("values", [["Team-A"], ["a", "b"], ["x" * 64]])
def test_a_bad_or_repeated_namespace_header_is_refused(values: list[str]) -> None:
    """Not a Kubernetes name, or sent twice: a 400 naming the header."""
    with pytest.raises(CompatError, match=cr.NAMESPACE_HEADER):
        cr.parse_namespace(values)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False)],
)
def test_query_booleans_are_case_insensitive(raw: str, expected: bool) -> None:
    """py-sdk sends true/false; Airflow's requests sends True/False."""
    assert cr.parse_bool({"active_only": [raw]}, "active_only") is expected


def test_a_missing_or_empty_boolean_is_false_and_garbage_is_refused() -> None:
    """Absent and empty read as false; anything else than a boolean is a 400."""
    assert cr.parse_bool({}, "active_only") is False
    assert cr.parse_bool({"active_only": [""]}, "active_only") is False
    with pytest.raises(CompatError, match="expected true or false"):
        cr.parse_bool({"active_only": ["yes"]}, "active_only")


@pytest.mark.parametrize(
    ("query", "expected"),
    [({"run_id": ["12"]}, 12), ({"run_id": ["9223372036854775807"]}, 2**63 - 1)],
)
def test_run_ids_in_queries(query: dict[str, list[str]], expected: int) -> None:
    """run_id is an int64."""
    assert cr.parse_run_id(query) == expected


@pytest.mark.parametrize(
    ("query", "needle"),
    [({}, "Missing required field: run_id"), ({"run_id": ["x"]}, "expected an integer")],
)
def test_a_missing_or_bad_run_id_is_refused(query: dict[str, list[str]], needle: str) -> None:
    """Databricks' own wording for a missing or non-integer run_id."""
    with pytest.raises(CompatError, match=needle):
        cr.parse_run_id(query)


@pytest.mark.parametrize(("body", "expected"), [({"run_id": 3}, 3), ({"run_id": "3"}, 3)])
def test_cancel_takes_run_id_as_a_number_or_a_numeric_string(
    body: dict[str, Any], expected: int
) -> None:
    """Some clients send int64 ids as strings."""
    assert cr.body_run_id(body) == expected


@pytest.mark.parametrize("body", [{}, {"run_id": True}, {"run_id": 1.5}, {"run_id": "a"}])
def test_cancel_refuses_a_missing_or_bad_run_id(body: dict[str, Any]) -> None:
    """No id, a boolean, a float or a word: a 400."""
    with pytest.raises(CompatError):
        cr.body_run_id(body)


def test_get_passes_paging_and_history_flags_to_databricks() -> None:
    """page_token as sent; booleans in the lowercase Databricks parses."""
    query = {"run_id": ["1"], "page_token": ["abc"], "include_history": ["True"]}
    assert cr.remote_get_params(query) == {"page_token": "abc", "include_history": "true"}


# --- runs/list ------------------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "expected"), [(None, 20), ("0", 25), ("1", 1), ("25", 25)])
def test_list_limits(limit: str | None, expected: int) -> None:
    """Default 20; 0 means the maximum, 25."""
    query = {} if limit is None else {"limit": [limit]}
    assert cr.parse_list_query(query).limit == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": ["26"]}, "Invalid limit 26 - it has to be no more than 25."),
        ({"limit": ["-1"]}, "Invalid limit -1 - it has to be no less than 0."),
        ({"offset": ["-1"]}, "Invalid offset -1 - it has to be no less than 0."),
        (
            {"active_only": ["true"], "completed_only": ["true"]},
            "active_only and completed_only cannot both be true.",
        ),
        ({"run_type": ["NIGHTLY"]}, "Invalid value for parameter run_type: NIGHTLY"),
        ({"page_token": ["%%%"]}, "Invalid page token: %%%"),
        ({"start_time_from": ["soon"]}, "expected an integer"),
    ],
)
def test_list_refusals_use_databricks_words(query: dict[str, list[str]], message: str) -> None:
    """Each bad list parameter is a 400 INVALID_PARAMETER_VALUE with Databricks' message."""
    with pytest.raises(CompatError) as caught:
        cr.parse_list_query(query)
    assert message in caught.value.message
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    ("query", "nothing"),
    [
        ({}, False),
        ({"run_type": ["SUBMIT_RUN"]}, False),
        ({"run_type": ["JOB_RUN"]}, True),
        ({"run_type": ["WORKFLOW_RUN"]}, True),
        ({"job_id": ["118822"]}, True),
    ],
)
def test_filters_no_ledger_run_can_match(query: dict[str, list[str]], nothing: bool) -> None:
    """Ledger runs are one-time runs of no job: a job or another run type matches none."""
    assert cr.parse_list_query(query).matches_nothing is nothing


def test_active_and_completed_select_ledger_states() -> None:
    """active_only: every state not yet ended (held runs included); completed_only: the rest;
    never a run Databricks refused, which a client saw as a refused submit."""
    assert ListQuery(active_only=True).states == {s for s in RunState if not s.terminal}
    ended = {s for s in RunState if s.terminal} - {RunState.REJECTED}
    assert ListQuery(completed_only=True).states == ended
    assert ListQuery().states == set(RunState) - {RunState.REJECTED}


def test_time_filters_are_inclusive_on_the_submission_time() -> None:
    """start_time_from/to (epoch ms, inclusive) compare with when the run was submitted."""
    run = ledger_run(created_seconds=10)
    at = EPOCH_MS + 10_000
    assert ListQuery(start_time_from=at, start_time_to=at).admits(run)
    assert not ListQuery(start_time_from=at + 1).admits(run)
    assert ListQuery(start_time_from=at + 1).past_window(run)
    assert not ListQuery(start_time_to=at - 1).admits(run)
    assert not ListQuery(start_time_to=at - 1).past_window(run)


@pytest.mark.parametrize("token", [PageToken(None), PageToken("abc", 3), PageToken("x" * 80, 0, 4)])
def test_page_tokens_round_trip(token: PageToken) -> None:
    """A token decodes to where it was made."""
    assert PageToken.decode(token.encode()) == token


def _forged(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "%%%",
        _forged({}),
        _forged([1]),
        _forged({"c": 1, "s": 0}),
        _forged({"c": None, "s": -1}),
        _forged({"c": None, "s": True}),
        _forged({"c": None, "s": 0, "o": -2}),
    ],
)
def test_forged_page_tokens_are_refused(raw: str) -> None:
    """Not base64 JSON, missing keys, a non-string cursor, a negative or boolean count: 400."""
    with pytest.raises(CompatError, match="Invalid page token"):
        PageToken.decode(raw)


def test_the_single_task_shape_is_passed_on_as_sent() -> None:
    """A top-level task type without tasks[] is Databricks' single-task run: forwarded whole."""
    body = {
        "run_name": "flyte",
        "notebook_task": {"notebook_path": "/Shared/etl"},
        "existing_cluster_id": "0101-abc",
        "libraries": [{"pypi": {"package": "x==1"}}],
    }
    request, _ = cr.parse_submit(json.dumps(body).encode(), [])
    assert request.spec == body


def test_nulls_in_a_submission_are_absent_at_every_depth() -> None:
    """prefect-databricks sends each unset field as null: the spec goes on without them."""
    body = {
        "run_name": None,
        "idempotency_token": None,
        "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/x"}, "sql_task": None}],
        "git_source": None,
    }
    request, token = cr.parse_submit(json.dumps(body).encode(), [])
    assert token is None
    assert request.spec == {
        "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/x"}}]
    }


@pytest.mark.parametrize(
    ("query", "body", "expected"),
    [
        ({}, b'{"run_id": 12}', 12),
        ({}, b'{"run_id": "12"}', 12),
        ({"run_id": ["7"]}, b'{"run_id": 12}', 7),  # the query string wins
        ({"run_id": [""]}, b'{"run_id": 12}', 12),  # an empty value is no value
    ],
)
def test_get_parameters_come_from_a_json_body_when_the_query_lacks_them(
    query: dict[str, list[str]], body: bytes, expected: int
) -> None:
    """Airflow's async hook sends GET runs/get with {"run_id": N} as its body."""
    assert cr.parse_run_id(cr.get_parameters(query, body)) == expected


@pytest.mark.parametrize("body", [b"", b"{nope", b"[1]", b'{"run_id": null}', b'{"other": 1}'])
def test_a_get_without_its_run_id_is_refused_however_it_was_sent(body: bytes) -> None:
    """No body, a body that is no JSON object, or a null: the same missing-field 400."""
    with pytest.raises(CompatError, match="Missing required field: run_id"):
        cr.parse_run_id(cr.get_parameters({}, body))


@pytest.mark.parametrize("value", ["[1]", '{"a": 1}', "1.5", '"12a"'])
def test_a_body_parameter_of_the_wrong_type_is_refused(value: str) -> None:
    """What no run id can be is refused with the parameter's own message."""
    with pytest.raises(CompatError, match="run_id: expected an integer"):
        cr.parse_run_id(cr.get_parameters({}, b'{"run_id": ' + value.encode() + b"}"))


def test_body_booleans_read_as_the_query_would() -> None:
    """runs/list's expand_tasks and active_only may come as JSON booleans in a body."""
    query = cr.parse_list_query(cr.get_parameters({}, b'{"expand_tasks": true, "limit": 3}'))
    assert query.expand_tasks
    assert query.limit == 3


def test_api_2_0_lists_up_to_26_runs() -> None:
    """2.0 takes a limit of 26 (and 0 means 26); 2.1 and 2.2 stop at 25."""
    assert cr.parse_list_query({"limit": ["26"]}, max_limit=cr.MAX_LIST_LIMIT_2_0).limit == 26
    assert cr.parse_list_query({"limit": ["0"]}, max_limit=cr.MAX_LIST_LIMIT_2_0).limit == 26
    with pytest.raises(CompatError, match=r"Invalid limit 27 - it has to be no more than 26\."):
        cr.parse_list_query({"limit": ["27"]}, max_limit=cr.MAX_LIST_LIMIT_2_0)
    with pytest.raises(CompatError, match="no more than 25"):
        cr.parse_list_query({"limit": ["26"]})
