"""Databricks' error shape: the status, error_code and Retry-After each failure takes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.api.compat import errors as ce
from gateway.api.compat.errors import CompatError, ErrorAnswer
from gateway.databricks import wire
from gateway.errors import (
    Conflict,
    CredentialUnavailable,
    DatabricksAuthError,
    DatabricksInvalidRequest,
    DatabricksPermissionDenied,
    DatabricksRateLimited,
    DatabricksUnavailable,
    Forbidden,
    IdentityNotConfigured,
    InvalidRequest,
    LakegateError,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    StoreError,
    Unauthenticated,
)
from gateway.model import RunState
from tests.api.compat.factories import ledger_run

# --- errors -----------------------------------------------------------------------------------


def _upstream(cls: type[LakegateError], status: int, code: str | None, message: str) -> Any:
    text = json.dumps({"error_code": code, "message": message}) if code else message
    error = wire.error_from_response(status, {}, text, endpoint="runs/get")
    assert isinstance(error, cls)
    return error


ERRORS: list[tuple[LakegateError, int, str, int | None]] = [
    (CompatError("x", error_code="MALFORMED_REQUEST"), 400, "MALFORMED_REQUEST", None),
    (InvalidRequest("bad"), 400, "INVALID_PARAMETER_VALUE", None),
    (PayloadTooLarge("big"), 400, "INVALID_PARAMETER_VALUE", None),
    (Unauthenticated("who"), 401, "UNAUTHENTICATED", None),
    (Forbidden("no"), 403, "PERMISSION_DENIED", None),
    (IdentityNotConfigured("none", namespace="a"), 403, "PERMISSION_DENIED", None),
    (NotFound("gone"), 404, "RESOURCE_DOES_NOT_EXIST", None),
    (Conflict("other body"), 409, "RESOURCE_CONFLICT", None),
    (QuotaExceeded("slow", namespace="a", retry_after=2.2), 429, "REQUEST_LIMIT_EXCEEDED", 3),
    (QuotaExceeded("slow", namespace="a", retry_after=0), 429, "REQUEST_LIMIT_EXCEEDED", 1),
    (StoreError("db"), 503, "TEMPORARILY_UNAVAILABLE", 1),
    (CredentialUnavailable("secret", namespace="a"), 503, "TEMPORARILY_UNAVAILABLE", 1),
    (
        _upstream(DatabricksInvalidRequest, 400, "INVALID_STATE", "Run is done"),
        400,
        "INVALID_STATE",
        None,
    ),
    (
        _upstream(DatabricksInvalidRequest, 409, "RESOURCE_ALREADY_EXISTS", "exists"),
        409,
        "RESOURCE_ALREADY_EXISTS",
        None,
    ),
    (
        _upstream(DatabricksPermissionDenied, 403, "PERMISSION_DENIED", "no view"),
        403,
        "PERMISSION_DENIED",
        None,
    ),
    (
        _upstream(DatabricksRateLimited, 429, "REQUEST_LIMIT_EXCEEDED", "slow down"),
        429,
        "REQUEST_LIMIT_EXCEEDED",
        1,
    ),
    (_upstream(DatabricksAuthError, 401, None, "bad token"), 400, "INVALID_STATE", None),
    (
        _upstream(DatabricksUnavailable, 503, "TEMPORARILY_UNAVAILABLE", "busy"),
        503,
        "TEMPORARILY_UNAVAILABLE",
        1,
    ),
]


@pytest.mark.parametrize(
    ("error", "status", "code", "retry_after"), ERRORS, ids=lambda v: type(v).__name__
)
def test_errors_take_the_status_and_code_databricks_clients_branch_on(
    error: LakegateError, status: int, code: str, retry_after: int | None
) -> None:
    """Each lakegate error maps to Databricks' status, error_code and integer Retry-After."""
    answer = ce.error_answer(error)
    assert (answer.status, answer.error_code, answer.retry_after) == (status, code, retry_after)


def test_an_upstream_error_shows_databricks_own_message() -> None:
    """Not lakegate's wrapping of it: what Databricks said."""
    error = _upstream(DatabricksInvalidRequest, 400, "INVALID_PARAMETER_VALUE", "Bad cluster")
    assert ce.error_answer(error).message == "Bad cluster"


def test_a_refused_namespace_credential_does_not_read_as_the_callers_fault() -> None:
    """Databricks refusing the namespace's credential is a 400 that says whose credential."""
    answer = ce.error_answer(_upstream(DatabricksAuthError, 403, None, "Invalid access token."))
    assert answer.message == "Databricks refused the namespace's credential: Invalid access token."


def test_the_error_body_is_databricks_shape_with_the_request_id() -> None:
    """error_code, message and a google.rpc.RequestInfo detail; Retry-After as an integer."""
    answer = ErrorAnswer(429, "REQUEST_LIMIT_EXCEEDED", "slow", 3)
    assert answer.body("req-1") == {
        "error_code": "REQUEST_LIMIT_EXCEEDED",
        "message": "slow",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.RequestInfo",
                "request_id": "req-1",
                "serving_data": "",
            }
        ],
    }
    assert answer.headers() == {"Retry-After": "3"}
    assert ErrorAnswer(400, "X", "m").headers() == {}


def _refused(status: int, code: str | None, message: str) -> str:
    # The service records a refusal as "Databricks refused the run: <the upstream error>".
    body = json.dumps({"error_code": code, "message": message}) if code else message
    error = wire.error_from_response(status, {}, body, endpoint="runs/submit")
    return f"Databricks refused the run: {error.message}"


@pytest.mark.parametrize(
    ("state_message", "status", "code", "message"),
    [
        (
            _refused(400, "INVALID_PARAMETER_VALUE", "Task key must be specified"),
            400,
            "INVALID_PARAMETER_VALUE",
            "Task key must be specified",
        ),
        (_refused(400, None, "Bad spec"), 400, "INVALID_PARAMETER_VALUE", "Bad spec"),
        (
            _refused(403, "PERMISSION_DENIED", "No cluster access"),
            403,
            "PERMISSION_DENIED",
            "No cluster access",
        ),
        ("refused by policy", 400, "INVALID_PARAMETER_VALUE", "refused by policy"),
    ],
)
def test_a_rejected_submission_answers_as_databricks_refused_it(
    state_message: str, status: int, code: str, message: str
) -> None:
    """Databricks' status, code and message are recovered from the ledger's record."""
    refusal = ce.rejection(ledger_run(state=RunState.REJECTED, state_message=state_message))
    assert (refusal.status, refusal.error_code, refusal.message) == (status, code, message)
