"""Which ``gateway.errors`` class a Databricks error answer is. Pure: no I/O.

The body is read in any of its four shapes (``parse_error_body``): the standard JSON
``{"error_code", "message"}``, the legacy ``{"error": ...}``, ``CODE: message`` text and HTML.
Classification follows the SDKs (reference §2, ``classify_error``): an auth failure first
(401, the legacy 403 "Invalid access token." with a numeric ``error_code``), then the string
``error_code`` from a table, then the HTTP status.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import (
    DatabricksAuthError,
    DatabricksError,
    DatabricksInvalidRequest,
    DatabricksPermissionDenied,
    DatabricksRateLimited,
    DatabricksRunNotFound,
    DatabricksUnavailable,
)
from gateway.logs import UPSTREAM_MAX_CHARS, upstream_text

# Databricks' messages are short; HTML error pages are not, and would flood logs and problems.
MAX_MESSAGE_CHARS = UPSTREAM_MAX_CHARS
# Endpoints whose subject is one run id: there "does not exist" means the run is unknown.
RUN_ID_ENDPOINTS = frozenset({"runs/get", "runs/cancel", "runs/get-output"})

_RUN_MISSING = re.compile(r"\bRun .* does not exist|\bRun: .* in job: .* doesn't exist", re.I)
# The legacy token refusal comes as 403 with a numeric error_code; its message is the signal.
_TOKEN_REFUSED = re.compile(
    r"invalid access token|token (?:is )?expir|token expired|expired token|invalid token", re.I
)
# Messages the SDKs retry whatever the status (reference §2.4).
_RATE_LIMIT_MESSAGE = re.compile(r"RPC token bucket limit has been exceeded", re.I)
_TRANSIENT_MESSAGE = re.compile(
    r"ClusterNotReadyException|Unexpected error|Please try again later or try a faster operation",
    re.I,
)
_CODE_TEXT = re.compile(r"^([A-Z][A-Z0-9_]+): (.+)$", re.S)
_HTML_PRE = re.compile(r"<pre>(.*?)</pre>", re.I | re.S)
_HTML_TITLE = re.compile(r"<title>(.*?)</title>", re.I | re.S)
_HTML_TAG = re.compile(r"<[^>]+>")

_CODE_CLASSES: Mapping[str, type[DatabricksError]] = {
    "INVALID_PARAMETER_VALUE": DatabricksInvalidRequest,
    "INVALID_STATE": DatabricksInvalidRequest,
    "MALFORMED_REQUEST": DatabricksInvalidRequest,
    "BAD_REQUEST": DatabricksInvalidRequest,
    "QUOTA_EXCEEDED": DatabricksInvalidRequest,
    "RESOURCE_ALREADY_EXISTS": DatabricksInvalidRequest,
    "ALREADY_EXISTS": DatabricksInvalidRequest,
    "ENDPOINT_NOT_FOUND": DatabricksInvalidRequest,
    "UNAUTHENTICATED": DatabricksAuthError,
    "PERMISSION_DENIED": DatabricksPermissionDenied,
    "RESOURCE_DOES_NOT_EXIST": DatabricksRunNotFound,
    "NOT_FOUND": DatabricksRunNotFound,
    "REQUEST_LIMIT_EXCEEDED": DatabricksRateLimited,
    "RESOURCE_EXHAUSTED": DatabricksRateLimited,
    "TOO_MANY_REQUESTS": DatabricksRateLimited,
    # gRPC's ABORTED is a lost race with a concurrent change: trying again is the cure.
    "ABORTED": DatabricksUnavailable,
    "INTERNAL_ERROR": DatabricksUnavailable,
    "UNKNOWN": DatabricksUnavailable,
    "DATA_LOSS": DatabricksUnavailable,
    "NOT_IMPLEMENTED": DatabricksUnavailable,
    "TEMPORARILY_UNAVAILABLE": DatabricksUnavailable,
    "DEADLINE_EXCEEDED": DatabricksUnavailable,
}


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """An error answer's code (string codes only) and message, whatever shape it came in."""

    error_code: str | None
    message: str


def parse_error_body(text: str) -> ErrorBody:
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            payload = json.loads(stripped)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            return _error_from_json(payload)
    match = _CODE_TEXT.match(stripped)
    if match:
        return ErrorBody(match.group(1), clip(match.group(2)))
    if re.search(r"<(?:html|body|pre|title|h1)\b", stripped, re.I):
        return ErrorBody(None, clip(_html_text(stripped)))
    return ErrorBody(None, clip(stripped))


def classify_error(
    status: int, error_code: str | None, message: str, *, endpoint: str
) -> type[DatabricksError]:
    """Which error class an answer is: auth first, then error_code, then the HTTP status."""
    if status == 401 or error_code == "UNAUTHENTICATED":
        return DatabricksAuthError
    if status == 403 and error_code is None and _TOKEN_REFUSED.search(message):
        return DatabricksAuthError
    if _RATE_LIMIT_MESSAGE.search(message):
        return DatabricksRateLimited
    if _TRANSIENT_MESSAGE.search(message):
        return DatabricksUnavailable
    run_endpoint = endpoint in RUN_ID_ENDPOINTS
    if run_endpoint and _RUN_MISSING.search(message) and status in (400, 404):
        return DatabricksRunNotFound
    cls = _CODE_CLASSES.get(error_code or "")
    if cls is DatabricksRunNotFound and not run_endpoint:
        # On runs/submit "does not exist" names something in the spec (a cluster, a policy).
        return DatabricksInvalidRequest
    if cls is not None:
        return cls
    return _status_class(status, run_endpoint=run_endpoint)


def _status_class(status: int, *, run_endpoint: bool) -> type[DatabricksError]:
    if status == 403:
        return DatabricksPermissionDenied
    if status == 404:
        return DatabricksRunNotFound if run_endpoint else DatabricksInvalidRequest
    if status == 429:
        return DatabricksRateLimited
    if status == 408 or status >= 500:
        return DatabricksUnavailable
    if 400 <= status < 500:
        return DatabricksInvalidRequest
    return DatabricksError


def _error_from_json(payload: Mapping[str, Any]) -> ErrorBody:
    raw_code = payload.get("error_code")
    # The legacy quirk sends the HTTP status as an integer code; it says nothing the status
    # does not, so only string codes count.
    code = raw_code if isinstance(raw_code, str) and not raw_code.isdigit() else None
    message = payload.get("message")
    if not isinstance(message, str) or not message:
        legacy = payload.get("error")
        if isinstance(legacy, Mapping):
            message = legacy.get("message")
            code = code or _text(legacy.get("code"))
        else:
            message = legacy
    if not isinstance(message, str) or not message:
        message = payload.get("detail") or payload.get("error_description")
    if not isinstance(message, str):
        message = ""
    if code is None:
        match = _CODE_TEXT.match(message)
        if match:
            code, message = match.group(1), match.group(2)
    return ErrorBody(code, clip(message))


def _html_text(text: str) -> str:
    match = _HTML_PRE.search(text) or _HTML_TITLE.search(text)
    inner = match.group(1) if match else text
    return " ".join(html.unescape(_HTML_TAG.sub(" ", inner)).split())


def clip(text: str) -> str:
    # Redacted (held secrets, credential shapes) before it is cut: it may echo our token.
    return upstream_text(text, MAX_MESSAGE_CHARS)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
