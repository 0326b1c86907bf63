"""Log redaction: no token, secret, JWT or Authorization header reaches a log line."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import logs

PAT = "dapi0123456789abcdef0123456789abcdef"
OAUTH_SECRET = "dose0123456789ABCDEFabcdef01234567"
JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0."
    "eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YTpiIn0."
    "c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
)
OPAQUE = "Zk9xTUtQbmFhcmR2YXJrLXRva2Vu"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Authorization: Bearer {OPAQUE}", OPAQUE),
        (f"authorization=basic {OPAQUE}", OPAQUE),
        (f"sent token {PAT} to host", PAT),
        (f"Token {OPAQUE}2 was refused", OPAQUE),
        (f"client secret is {OAUTH_SECRET}", OAUTH_SECRET),
        (f"subject {JWT} refused", JWT),
        (f"grant_type=x&subject_token={OPAQUE}&scope=all-apis", OPAQUE),
        (f"client_id=a&client_secret={OPAQUE}", OPAQUE),
    ],
)
def test_redact_text_removes_credential_shapes(text: str, secret: str) -> None:
    """Every credential shape we send or receive is scrubbed from free text."""
    redacted = logs.redact_text(text)
    assert secret not in redacted
    assert logs.REDACTED in redacted


@pytest.mark.parametrize(
    "text",
    [
        "run 42 of namespace team-a reached SUCCEEDED",
        "token endpoint http://127.0.0.1:8/oidc/v1/token refused the request (503)",
        "token exchange failed: invalid_grant",
    ],
)
def test_redact_text_keeps_ordinary_words(text: str) -> None:
    """Plain messages, including prose about tokens, pass through untouched."""
    assert logs.redact_text(text) == text


@pytest.mark.parametrize("pattern", [p for p, _ in logs._VALUE_PATTERNS], ids=str)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_no_credential_shape_escapes_the_quick_check(
    pattern: re.Pattern[str], data: st.DataObject
) -> None:
    """Any text one of the patterns would redact passes the one search that lets text skip
    them, so the shortcut never lets a credential through."""
    text = data.draw(st.from_regex(pattern))
    assert logs._MAYBE_CREDENTIAL.search(text) is not None


def test_secret_keys_lose_their_values_at_any_depth() -> None:
    """Keys named like secrets are redacted whatever their value looks like."""
    event = {"headers": {"Authorization": "short", "Accept": "json"}, "client_secret": "x1"}
    out = logs.redact_processor(None, "info", dict(event))
    assert out["client_secret"] == logs.REDACTED
    assert out["headers"] == {"Authorization": logs.REDACTED, "Accept": "json"}


def test_exceptions_are_redacted_in_rendered_output() -> None:
    """A token inside an exception message does not survive rendering."""
    stream = io.StringIO()
    structlog.configure(
        processors=[*logs.shared_processors(), structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    try:
        try:
            raise RuntimeError(f"upstream said no to Bearer {OPAQUE}")
        except RuntimeError:
            structlog.get_logger().exception("call_failed", body={"access_token": PAT}, jwt=JWT)
    finally:
        structlog.reset_defaults()
    line = stream.getvalue()
    assert json.loads(line)["event"] == "call_failed"
    for secret in (OPAQUE, PAT, JWT):
        assert secret not in line


def test_context_is_bound_and_released() -> None:
    """bound() adds request context to events inside the block only."""
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as captured:
        with logs.bound(request_id="r1", namespace="team-a"):
            structlog.get_logger().info("inside")
        structlog.get_logger().info("outside")
    assert captured[0]["request_id"] == "r1"
    assert "request_id" not in captured[1]


def test_stdlib_records_go_through_redaction(capsys: pytest.CaptureFixture[str]) -> None:
    """Libraries logging through the standard library are redacted too."""
    logs.configure(level="info", fmt="json")
    try:
        logging.getLogger("aiohttp.client").warning("retrying with Bearer %s", OPAQUE)
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()
    err = capsys.readouterr().err
    assert "retrying with Bearer" in err
    assert OPAQUE not in err
