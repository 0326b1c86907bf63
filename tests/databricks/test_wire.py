"""The Jobs API wire format: request bodies, response parsing, error answers. No event loop."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.databricks import wire
from gateway.errors import (
    DatabricksAuthError,
    DatabricksError,
    DatabricksInvalidRequest,
    DatabricksPermissionDenied,
    DatabricksRateLimited,
    DatabricksRunNotFound,
    DatabricksUnavailable,
)
from gateway.model import RemoteStatus

SPEC = {"run_name": "team-a/etl-42", "tasks": [{"task_key": "main", "notebook_task": {}}]}


BUCKET_TEXT = (
    "REQUEST_LIMIT_EXCEEDED: GetUserPermissionsRequest RPC token bucket limit has been exceeded."
)
HTML_502 = (
    "<html><head><title>Error 502</title></head>"
    "<body><pre>Bad Gateway &amp; more</pre></body></html>"
)


def _json(**fields: Any) -> str:
    return json.dumps(fields)


# --- submit body ----------------------------------------------------------------------------


def test_submit_body_carries_the_idempotency_token() -> None:
    """The runs/submit body is the spec plus our idempotency token."""
    body = wire.submit_body(SPEC, "lakegate-abc-1")
    assert body == {**SPEC, "idempotency_token": "lakegate-abc-1"}


def test_submit_body_replaces_a_token_from_the_spec() -> None:
    """A token inside the caller's spec never wins over the ledger's."""
    body = wire.submit_body({**SPEC, "idempotency_token": "theirs"}, "ours")
    assert body["idempotency_token"] == "ours"


def test_submit_body_does_not_touch_the_spec() -> None:
    """Building the body leaves the caller's spec as it was."""
    spec = dict(SPEC)
    wire.submit_body(spec, "t")
    assert "idempotency_token" not in spec


def test_submit_body_accepts_a_token_of_64_characters() -> None:
    """64 characters is Databricks' limit, and allowed."""
    assert wire.submit_body(SPEC, "x" * 64)["idempotency_token"] == "x" * 64


@pytest.mark.parametrize("token", ["", "x" * 65])
def test_submit_body_rejects_a_missing_or_long_token(token: str) -> None:
    """No submission leaves without a token Databricks would accept."""
    with pytest.raises(ValueError, match="idempotency_token"):
        wire.submit_body(SPEC, token)


# --- run state ------------------------------------------------------------------------------

TERMINAL_FAILURE = {
    "run_id": 455644833,
    "run_name": "team-a/etl-42",
    "run_type": "SUBMIT_RUN",
    "start_time": 1767225600000,
    "end_time": 1767225700000,
    "run_page_url": "https://adb-123.4.azuredatabricks.net/?o=123#job/118822/run/455644833",
    "state": {
        "life_cycle_state": "TERMINATED",
        "result_state": "FAILED",
        "state_message": "Task main failed with message: boom.",
        "user_cancelled_or_timedout": False,
    },
    "status": {
        "state": "TERMINATED",
        "termination_details": {
            "code": "RUN_EXECUTION_ERROR",
            "type": "CLIENT_ERROR",
            "message": "Task main failed with message: boom.",
        },
    },
    "tasks": [
        {
            "task_key": "main",
            "run_id": 455644834,
            "attempt_number": 0,
            "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
            "status": {"state": "TERMINATED"},
        }
    ],
}

RUNNING = {
    "run_id": 455644833,
    "start_time": 1767225600000,
    "end_time": 0,
    "state": {
        "life_cycle_state": "RUNNING",
        "state_message": "",
        "user_cancelled_or_timedout": False,
    },
    "status": {"state": "RUNNING"},
}


def test_parse_run_reads_a_terminal_failure_from_state_and_status() -> None:
    """Reference §1.3's failure example keeps both the legacy state and termination details."""
    snap = wire.parse_run(TERMINAL_FAILURE)
    assert snap.run_id == 455644833
    assert snap.status == RemoteStatus(
        life_cycle_state="TERMINATED",
        result_state="FAILED",
        state_message="Task main failed with message: boom.",
        user_cancelled_or_timedout=False,
        status_state="TERMINATED",
        termination_code="RUN_EXECUTION_ERROR",
        termination_type="CLIENT_ERROR",
        termination_message="Task main failed with message: boom.",
    )
    assert snap.run_page_url == TERMINAL_FAILURE["run_page_url"]
    assert (snap.start_time, snap.end_time) == (1767225600000, 1767225700000)
    assert snap.run_name == "team-a/etl-42"
    assert snap.run_type == "SUBMIT_RUN"


def test_parse_run_summarises_tasks() -> None:
    """Each task keeps its key, its task run id and its own state."""
    (task,) = wire.parse_run(TERMINAL_FAILURE).tasks
    assert (task.task_key, task.run_id, task.attempt_number) == ("main", 455644834, 0)
    assert task.status is not None
    assert (task.status.life_cycle_state, task.status.result_state) == ("TERMINATED", "FAILED")


def test_parse_run_turns_end_time_zero_into_none() -> None:
    """A running run's end_time 0 means 'not ended', not the epoch."""
    snap = wire.parse_run(RUNNING)
    assert snap.end_time is None
    assert snap.status.life_cycle_state == "RUNNING"
    assert snap.status.result_state is None
    assert snap.tasks == ()


@pytest.mark.parametrize(
    ("obj", "life_cycle", "status_state"),
    [
        ({"state": {"life_cycle_state": "PENDING"}}, "PENDING", None),
        ({"status": {"state": "QUEUED"}}, "QUEUED", "QUEUED"),
        (
            {"state": {"life_cycle_state": "INTERNAL_ERROR"}, "status": {"state": "TERMINATED"}},
            "INTERNAL_ERROR",
            "TERMINATED",
        ),
        (
            {"state": {"life_cycle_state": "BLOCKED"}, "status": {"state": "BLOCKED"}},
            "BLOCKED",
            "BLOCKED",
        ),
    ],
)
def test_parse_remote_status_reads_either_object(
    obj: dict[str, Any], life_cycle: str, status_state: str | None
) -> None:
    """The life cycle comes from legacy state, or from status when state is missing."""
    status = wire.parse_remote_status(obj)
    assert (status.life_cycle_state, status.status_state) == (life_cycle, status_state)


def test_parse_remote_status_keeps_unknown_codes() -> None:
    """New termination codes pass through: Databricks says more may appear."""
    status = wire.parse_remote_status(
        {
            "status": {
                "state": "TERMINATED",
                "termination_details": {"code": "SOMETHING_NEW", "type": "CLOUD_FAILURE"},
            }
        }
    )
    assert (status.termination_code, status.termination_type) == ("SOMETHING_NEW", "CLOUD_FAILURE")


def test_parse_remote_status_reads_the_cancel_flag() -> None:
    """user_cancelled_or_timedout is carried through."""
    status = wire.parse_remote_status(
        {
            "state": {
                "life_cycle_state": "TERMINATED",
                "result_state": "CANCELED",
                "user_cancelled_or_timedout": True,
            }
        }
    )
    assert status.user_cancelled_or_timedout is True


@pytest.mark.parametrize(
    "obj",
    [
        {"run_id": 1},
        {"run_id": 1, "state": "RUNNING"},
        {"run_id": "x1", "state": {"life_cycle_state": "RUNNING"}},
        {"run_id": True, "state": {"life_cycle_state": "RUNNING"}},
        {"state": {"life_cycle_state": "RUNNING"}},
        {"run_id": 1, "state": {"life_cycle_state": "RUNNING"}, "tasks": {"a": 1}},
    ],
)
def test_parse_run_refuses_malformed_runs(obj: dict[str, Any]) -> None:
    """A run without an id or a state is an upstream error, not a crash."""
    with pytest.raises(DatabricksError, match="runs/get sent"):
        wire.parse_run(obj)


def test_parse_run_accepts_a_string_run_id() -> None:
    """int64 ids that a proxy turned into strings still parse."""
    assert wire.parse_run({**RUNNING, "run_id": "455644833"}).run_id == 455644833


def test_parse_run_notes_more_tasks_on_api_22() -> None:
    """A runs/get page token says the task list was cut at 100."""
    assert wire.parse_run({**RUNNING, "next_page_token": "abc"}).has_more_tasks is True
    assert wire.parse_run(RUNNING).has_more_tasks is False


def test_parse_runs_page_reads_runs_and_paging() -> None:
    """runs/list yields snapshots and the token for the next page."""
    page = wire.parse_runs_page(
        {"runs": [RUNNING, TERMINAL_FAILURE], "has_more": True, "next_page_token": "p2"}
    )
    assert [r.status.life_cycle_state for r in page.runs] == ["RUNNING", "TERMINATED"]
    assert (page.has_more, page.next_page_token) == (True, "p2")


def test_parse_runs_page_without_runs_is_empty() -> None:
    """Databricks omits 'runs' when there are none."""
    page = wire.parse_runs_page({"has_more": False})
    assert page == wire.RunsPage(runs=(), has_more=False, next_page_token=None)


def test_parse_submit_returns_the_run_id() -> None:
    """runs/submit answers with the run id only."""
    assert wire.parse_submit({"run_id": 455644833}) == 455644833


@pytest.mark.parametrize(("text", "expected"), [("", {}), ("  ", {}), ('{"a": 1}', {"a": 1})])
def test_parse_json_accepts_objects_and_empty_bodies(text: str, expected: dict[str, Any]) -> None:
    """runs/cancel answers {} or nothing; both are fine."""
    assert wire.parse_json(text, endpoint="runs/cancel") == expected


@pytest.mark.parametrize("text", ["<html>login</html>", "[1, 2]", "{bad"])
def test_parse_json_refuses_other_bodies(text: str) -> None:
    """A 200 that is not a JSON object is an upstream error naming the endpoint."""
    with pytest.raises(DatabricksError, match="runs/get"):
        wire.parse_json(text, endpoint="runs/get")


# --- Retry-After ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": " 3 "}, 3.0),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({"Retry-After": "1.5"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after_takes_integer_seconds(
    headers: dict[str, str], expected: float | None
) -> None:
    """Retry-After is read as integer seconds, as Databricks sends it; dates are ignored."""
    assert wire.parse_retry_after(headers) == expected


# --- error classes --------------------------------------------------------------------------

INVALID = _json(error_code="INVALID_PARAMETER_VALUE", message="Missing required field: tasks")
RUN_MISSING = _json(error_code="INVALID_PARAMETER_VALUE", message="Run 42 does not exist.")


@pytest.mark.parametrize(
    ("status", "text", "endpoint", "cls"),
    [
        # auth: 401 whatever the body, and the legacy 403 token quirk
        (401, "", "runs/get", DatabricksAuthError),
        (
            401,
            _json(error_code="UNAUTHENTICATED", message="no"),
            "runs/submit",
            DatabricksAuthError,
        ),
        (
            403,
            _json(error_code=403, message="Invalid access token."),
            "runs/submit",
            DatabricksAuthError,
        ),
        (
            403,
            _json(error_code=403, message="Invalid access token. [ReqId: 1-2-3]"),
            "runs/get",
            DatabricksAuthError,
        ),
        (
            403,
            "Error 403 Token is expiring within 30 seconds. (token expired)",
            "runs/get",
            DatabricksAuthError,
        ),
        # permission
        (
            403,
            _json(error_code="PERMISSION_DENIED", message="User x cannot run"),
            "runs/submit",
            DatabricksPermissionDenied,
        ),
        (
            403,
            _json(error_code="PERMISSION_DENIED", message="Invalid access token."),
            "runs/get",
            DatabricksPermissionDenied,
        ),
        (403, "<html><title>Forbidden</title></html>", "runs/get", DatabricksPermissionDenied),
        # a bad request, and the unknown run on the endpoints that name one
        (400, INVALID, "runs/submit", DatabricksInvalidRequest),
        (400, RUN_MISSING, "runs/get", DatabricksRunNotFound),
        (400, RUN_MISSING, "runs/cancel", DatabricksRunNotFound),
        (400, RUN_MISSING, "runs/get-output", DatabricksRunNotFound),
        (
            400,
            _json(error_code="INVALID_PARAMETER_VALUE", message="Run: 5 in job: 6 doesn't exist"),
            "runs/get",
            DatabricksRunNotFound,
        ),
        (400, INVALID, "runs/get", DatabricksInvalidRequest),
        (
            400,
            _json(error_code="MALFORMED_REQUEST", message="bad json"),
            "runs/submit",
            DatabricksInvalidRequest,
        ),
        (
            400,
            _json(error_code="QUOTA_EXCEEDED", message="saved jobs"),
            "runs/submit",
            DatabricksInvalidRequest,
        ),
        (
            404,
            _json(error_code="RESOURCE_DOES_NOT_EXIST", message="Run 7 does not exist"),
            "runs/get",
            DatabricksRunNotFound,
        ),
        (
            404,
            _json(error_code="RESOURCE_DOES_NOT_EXIST", message="no such run"),
            "runs/cancel",
            DatabricksRunNotFound,
        ),
        (404, "", "runs/get", DatabricksRunNotFound),
        (
            404,
            _json(error_code="RESOURCE_DOES_NOT_EXIST", message="Cluster 1 does not exist"),
            "runs/submit",
            DatabricksInvalidRequest,
        ),
        (
            404,
            _json(error_code="ENDPOINT_NOT_FOUND", message="No API found"),
            "runs/get",
            DatabricksInvalidRequest,
        ),
        (
            409,
            _json(error_code="RESOURCE_ALREADY_EXISTS", message="x"),
            "runs/submit",
            DatabricksInvalidRequest,
        ),
        (
            409,
            _json(error_code="ABORTED", message="conflict"),
            "runs/submit",
            DatabricksUnavailable,
        ),
        # rate limits
        (
            429,
            _json(
                error_code="REQUEST_LIMIT_EXCEEDED",
                message="There are already 5 active runs (limit: 5).",
            ),
            "runs/submit",
            DatabricksRateLimited,
        ),
        (429, "", "runs/get", DatabricksRateLimited),
        (
            400,
            BUCKET_TEXT,
            "runs/submit",
            DatabricksRateLimited,
        ),
        (
            400,
            _json(error_code="INVALID_STATE", message="RPC token bucket limit has been exceeded"),
            "runs/submit",
            DatabricksRateLimited,
        ),
        # transient
        (
            500,
            _json(error_code="INTERNAL_ERROR", message="oops"),
            "runs/submit",
            DatabricksUnavailable,
        ),
        (500, "", "runs/get", DatabricksUnavailable),
        (502, "<html><pre>Bad Gateway</pre></html>", "runs/get", DatabricksUnavailable),
        (
            503,
            _json(error_code="TEMPORARILY_UNAVAILABLE", message="later"),
            "runs/list",
            DatabricksUnavailable,
        ),
        (504, "", "runs/get", DatabricksUnavailable),
        (408, "", "runs/get", DatabricksUnavailable),
        (
            400,
            _json(error_code="INVALID_STATE", message="ClusterNotReadyException: starting"),
            "runs/submit",
            DatabricksUnavailable,
        ),
        (
            400,
            "Please try again later or try a faster operation.",
            "runs/list",
            DatabricksUnavailable,
        ),
        # other 4xx are permanent; a redirect (never followed) is an error of its own
        (405, "", "runs/submit", DatabricksInvalidRequest),
        (302, "", "runs/get", DatabricksError),
    ],
)
def test_error_from_response_picks_the_class(
    status: int, text: str, endpoint: str, cls: type[DatabricksError]
) -> None:
    """Auth first, then error_code, then HTTP status, as the SDKs map them."""
    error = wire.error_from_response(status, {}, text, endpoint=endpoint)
    assert type(error) is cls
    assert error.http_status == status


def test_error_keeps_databricks_message_and_code() -> None:
    """Callers see Databricks' own words, the endpoint and the code."""
    error = wire.error_from_response(400, {}, INVALID, endpoint="runs/submit")
    assert "Missing required field: tasks" in error.message
    assert "runs/submit" in error.message
    assert error.error_code == "INVALID_PARAMETER_VALUE"
    assert not error.transient


def test_error_from_the_token_quirk_has_no_code() -> None:
    """The numeric legacy error_code is not kept as a code."""
    error = wire.error_from_response(
        403, {}, _json(error_code=403, message="Invalid access token."), endpoint="runs/get"
    )
    assert error.error_code is None
    assert "Invalid access token." in error.message


def test_error_message_falls_back_to_the_reason_phrase_header() -> None:
    """An empty body borrows X-Databricks-Reason-Phrase."""
    error = wire.error_from_response(
        403, {"X-Databricks-Reason-Phrase": "Invalid access token."}, "", endpoint="runs/get"
    )
    assert isinstance(error, DatabricksAuthError)
    assert "Invalid access token." in error.message


def test_error_message_names_the_status_when_nothing_else() -> None:
    """With no body and no header, the message still says what happened."""
    error = wire.error_from_response(500, {}, "", endpoint="runs/get")
    assert "HTTP 500" in error.message


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (429, {"Retry-After": "5"}, 5.0),
        (429, {}, 1.0),
        (503, {"Retry-After": "2"}, 2.0),
        (503, {}, None),
        (500, {}, None),
    ],
)
def test_error_carries_retry_after(
    status: int, headers: dict[str, str], retry_after: float | None
) -> None:
    """429 always has a Retry-After (default 1 s); 503 has one when Databricks sends it."""
    error = wire.error_from_response(status, headers, "", endpoint="runs/submit")
    assert error.retry_after == retry_after
    assert error.transient
