"""Databricks' error shape for the facade: which status and error_code each failure takes.

Pure. Databricks clients branch on ``error_code``, then the HTTP status (reference section
2.2), and retry 429 and 503 after an integer ``Retry-After``; the body is
``{"error_code", "message", "details": [google.rpc.RequestInfo]}``. A Databricks refusal keeps
Databricks' own status, code and message, so a client raises the class it would raise
against the workspace itself.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from gateway.databricks_errors import error_body
from gateway.errors import (
    Conflict,
    DatabricksAuthError,
    DatabricksError,
    DatabricksInvalidRequest,
    DatabricksPermissionDenied,
    DatabricksRateLimited,
    DatabricksRunNotFound,
    LakegateError,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RequestError,
    Unauthenticated,
)
from gateway.logs import redact_text
from gateway.model import RunRecord


class CompatError(RequestError):
    """A refusal of the facade, worded and coded as Databricks words it.

    A ``RequestError`` like any other, so the problem middleware could still render it; the
    facade's own middleware answers it in Databricks' shape instead.
    """

    def __init__(
        self, message: str, *, error_code: str = "INVALID_PARAMETER_VALUE", status: int = 400
    ) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.status = status

    def fields(self) -> dict[str, object]:
        return {"error_code": self.error_code}


def no_such_run(run_id: int) -> CompatError:
    # The exact words the SDKs turn into ResourceDoesNotExist (reference section 1.3); also
    # the answer for another namespace's run, which must look like no run at all.
    return CompatError(f"Run {run_id} does not exist.")


def token_reused(token: str) -> CompatError:
    return CompatError(
        f"idempotency_token '{token}' was already used in this namespace for a different "
        "request; send the same request to get its run, or a new token for a new run",
        error_code="RESOURCE_CONFLICT",
        status=409,
    )


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    status: int
    error_code: str
    message: str
    retry_after: int | None = None

    def body(self, request_id: str) -> dict[str, Any]:
        # The last word before the wire: no held secret or credential shape leaves in it.
        return error_body(self.error_code, redact_text(self.message), request_id)

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


# How ``gateway.databricks.wire`` words an upstream error: the endpoint, Databricks' status and
# code, then Databricks' own message, which is what a Databricks client should see.
_UPSTREAM = re.compile(
    r"^(?:Databricks refused the run: )?Databricks [\w/-]+ failed "
    r"\((?P<status>\d{3})(?: (?P<code>[A-Z][A-Z0-9_]*))?\): (?P<message>.*)$",
    re.S,
)


def _retry_seconds(value: float | None) -> int:
    # Databricks clients parse integers only; rounding up keeps a client that waits exactly
    # this long from being early.
    return max(1, math.ceil(value)) if value is not None and math.isfinite(value) else 1


def upstream_message(text: str) -> str:
    """Databricks' own message out of an upstream error's message (or the text itself)."""
    match = _UPSTREAM.match(text)
    return match.group("message") if match else text


def error_answer(exc: LakegateError) -> ErrorAnswer:
    """The Databricks-shaped answer for any lakegate error."""
    if isinstance(exc, CompatError):
        return ErrorAnswer(exc.status, exc.error_code, exc.message)
    if isinstance(exc, QuotaExceeded | DatabricksRateLimited):
        # Both say "this namespace is sending too much": Databricks' 429, which clients retry.
        retry = _retry_seconds(exc.retry_after)
        return ErrorAnswer(429, "REQUEST_LIMIT_EXCEEDED", upstream_message(exc.message), retry)
    if isinstance(exc, DatabricksError):
        return _databricks_answer(exc)
    if isinstance(exc, Unauthenticated):
        return ErrorAnswer(401, "UNAUTHENTICATED", exc.message)
    if exc.status == 403:
        # Forbidden, and a namespace without an identity or with a host off the allow-list.
        return ErrorAnswer(403, "PERMISSION_DENIED", exc.message)
    if isinstance(exc, PayloadTooLarge):
        return ErrorAnswer(400, "INVALID_PARAMETER_VALUE", exc.message)
    if isinstance(exc, Conflict):
        return ErrorAnswer(409, "RESOURCE_CONFLICT", exc.message)
    if isinstance(exc, NotFound):
        return ErrorAnswer(404, "RESOURCE_DOES_NOT_EXIST", exc.message)
    if exc.status < 500:
        return ErrorAnswer(400, "INVALID_PARAMETER_VALUE", exc.message)
    return _server_answer(exc)


def _databricks_answer(exc: DatabricksError) -> ErrorAnswer:
    message = upstream_message(exc.message)
    if isinstance(exc, DatabricksInvalidRequest | DatabricksRunNotFound):
        # Databricks' own 4xx (400, 404, 409) and code, so the SDK raises the class it would.
        status = exc.http_status if exc.http_status and 400 <= exc.http_status < 500 else 400
        return ErrorAnswer(status, exc.error_code or "INVALID_PARAMETER_VALUE", message)
    if isinstance(exc, DatabricksPermissionDenied):
        return ErrorAnswer(403, "PERMISSION_DENIED", message)
    if isinstance(exc, DatabricksAuthError):
        # The namespace's own Databricks credential was refused even after a refresh: the
        # caller's token is fine, so this must not read as 401/403, which clients blame on
        # their own credential. Not 503 either: retrying for minutes will not mend it. A
        # refusal of the namespace's configuration, like a malformed Secret (issue 9): 4xx.
        return ErrorAnswer(
            400, "INVALID_STATE", "Databricks refused the namespace's credential: " + message
        )
    return _server_answer(exc)


def _server_answer(exc: LakegateError) -> ErrorAnswer:
    # Clients retry 503 for minutes (py-sdk: 5), so only a failure that may clear by itself
    # says 503: a transient one, or one /v1 answers 503 too (a credential that cannot be had
    # while Kubernetes is away). A broken configuration is a 4xx before it gets here.
    if exc.transient or exc.status == 503:
        seconds = getattr(exc, "retry_after", None)
        retry = _retry_seconds(seconds if isinstance(seconds, int | float) else None)
        return ErrorAnswer(503, "TEMPORARILY_UNAVAILABLE", exc.message, retry)
    return ErrorAnswer(500, "INTERNAL_ERROR", exc.message)


def rejection(run: RunRecord) -> CompatError:
    """What Databricks answered when it refused ``run`` (REJECTED), as a client expects it."""
    match = _UPSTREAM.match(run.state_message)
    if match is None:
        return CompatError(run.state_message or "The run was rejected.")
    status, code = int(match.group("status")), match.group("code")
    if status == 403:
        return CompatError(match.group("message"), error_code="PERMISSION_DENIED", status=403)
    return CompatError(match.group("message"), error_code=code or "INVALID_PARAMETER_VALUE")
