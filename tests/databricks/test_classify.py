"""Reading Databricks error bodies in each of their shapes, for classification. No event loop."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.databricks import classify
from tests.databricks.test_wire import BUCKET_TEXT, HTML_502


def _json(**fields: Any) -> str:
    return json.dumps(fields)


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        (
            _json(error_code="INVALID_PARAMETER_VALUE", message="Invalid limit 27."),
            "INVALID_PARAMETER_VALUE",
            "Invalid limit 27.",
        ),
        (_json(error_code=403, message="Invalid access token."), None, "Invalid access token."),
        (_json(error_code="403", message="Invalid access token."), None, "Invalid access token."),
        (_json(error="Something broke"), None, "Something broke"),
        (
            _json(error={"code": "PERMISSION_DENIED", "message": "nope"}),
            "PERMISSION_DENIED",
            "nope",
        ),
        (_json(detail="SCIM says no", status="404"), None, "SCIM says no"),
        (
            _json(message="REQUEST_LIMIT_EXCEEDED: bucket empty"),
            "REQUEST_LIMIT_EXCEEDED",
            "bucket empty",
        ),
        (
            BUCKET_TEXT,
            "REQUEST_LIMIT_EXCEEDED",
            "GetUserPermissionsRequest RPC token bucket limit has been exceeded.",
        ),
        (
            HTML_502,
            None,
            "Bad Gateway & more",
        ),
        (
            "<html><head><title>503 Service Unavailable</title></head><body>x</body></html>",
            None,
            "503 Service Unavailable",
        ),
        ("upstream connect error", None, "upstream connect error"),
        ("", None, ""),
    ],
)
def test_parse_error_body_reads_every_shape(text: str, code: str | None, message: str) -> None:
    """Standard JSON, legacy JSON, 'CODE: message' text, HTML and plain text all parse."""
    assert classify.parse_error_body(text) == classify.ErrorBody(code, message)


def test_parse_error_body_clips_long_messages() -> None:
    """An error page cannot flood the exception message."""
    body = classify.parse_error_body("x" * 5000)
    assert len(body.message) < 1100
