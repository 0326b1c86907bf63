"""Log redaction: no token, secret, JWT or Authorization header reaches a log line."""

from __future__ import annotations

import copy
import datetime
import io
import json
import logging
import re

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import logs, secrets_registry
from tests.support.logging_config import configured_logs

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
    assert logs._maybe_credential(text)


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(),
        st.text(alphabet="bBeEaArRsSiIcCtToOkKnNyYjJdDpPlLwW_ \u017f\u212a\u0130\u0131"),
    )
)
def test_the_quick_check_answers_as_the_search_does(text: str) -> None:
    """The substring shortcut for ASCII text and the case-insensitive search agree on any
    text, including the letters Unicode folds onto ASCII ones (long s, Kelvin sign)."""
    assert logs._maybe_credential(text) == (logs._MAYBE_CREDENTIAL.search(text) is not None)


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


def test_a_text_logged_clean_is_masked_once_its_secret_is_known() -> None:
    """A text first logged before the secret in it was known is masked the next time it is
    logged: learning a secret forgets every text found clean."""
    text = "upstream echoed zq-late-canary-0001 back"
    assert logs.redact_text(text) == text
    assert logs.redact_processor(None, "info", {"detail": text})["detail"] == text
    secrets_registry.remember("zq-late-canary-0001")
    assert logs.redact_text(text) == f"upstream echoed {logs.REDACTED} back"
    assert logs.redact_processor(None, "info", {"detail": text})["detail"] == (
        f"upstream echoed {logs.REDACTED} back"
    )


def test_only_clean_texts_are_kept_and_the_set_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A text that held a credential is redacted every time and never kept; past its bound
    the set starts again rather than growing."""
    monkeypatch.setattr(logs, "_CLEAN_MAX_TEXTS", 3)
    clean = secrets_registry.REGISTRY.clean
    secret_text = f"sent Bearer {OPAQUE}"
    assert OPAQUE not in logs.redact_text(secret_text)
    assert OPAQUE not in logs.redact_text(secret_text)
    assert secret_text not in clean
    for i in range(10):
        logs.redact_text(f"route-{i}")
    assert len(secrets_registry.REGISTRY.clean) <= 3


def _reference_chain() -> list[structlog.types.Processor]:
    # The chain prepare_event stands for, as shared_processors() returned it before.
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        logs.redact_processor,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


@pytest.mark.parametrize("method", ["info", "warning", "warn", "exception"])
def test_the_fused_processor_gives_what_the_chain_gave(method: str) -> None:
    """prepare_event's event has the chain's keys in the chain's order and, but for the time
    and the stack's own line numbers, its values, for an event with a stack and an exception."""

    def event() -> dict[str, object]:
        return {"event": "call_failed", "stack_info": True, "exc_info": True, "body": JWT}

    with logs.bound(request_id="r1", namespace="team-a"):
        try:
            raise RuntimeError(f"upstream said no to Bearer {OPAQUE}")
        except RuntimeError:
            expected: object = event()
            for proc in _reference_chain():
                expected = proc(None, method, expected)  # type: ignore[arg-type]
            got = logs.prepare_event(None, method, event())
    assert isinstance(expected, dict)
    assert list(got) == list(expected)
    assert list(got)[-2:] == ["level", "timestamp"]
    for key in ("stack", "timestamp"):
        assert type(got[key]) is type(expected[key])
        del got[key], expected[key]
    assert got == expected
    assert OPAQUE not in str(got)
    assert JWT not in str(got)


def test_the_stack_starts_where_the_event_was_logged() -> None:
    """The fused processor's own frames are not the caller's: a stack ends at the caller."""
    stack = logs.prepare_event(None, "info", {"event": "e", "stack_info": True})["stack"]
    assert "test_the_stack_starts_where_the_event_was_logged" in stack.splitlines()[-2]
    assert "gateway/logs.py" not in stack


@pytest.mark.parametrize(
    "ns",
    [1_764_773_446_000_000_000, 1_764_773_446_000_001_999, 1_764_773_446_999_999_000, 0],
)
def test_timestamps_are_written_as_timestamper_writes_them(
    monkeypatch: pytest.MonkeyPatch, ns: int
) -> None:
    """UtcStamper's text is TimeStamper(fmt="iso", utc=True)'s for the same microsecond,
    a whole second (which isoformat writes without a fraction) included."""
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
        microseconds=ns // 1000
    )
    monkeypatch.setattr(logs.time, "time_ns", lambda: ns)
    stamper = logs.UtcStamper()
    assert stamper() == moment.isoformat().replace("+00:00", "Z")
    assert stamper() == moment.isoformat().replace("+00:00", "Z")  # from the cached second


def test_module_loggers_write_the_documented_json_lines() -> None:
    """A module logger (made before configure) writes one JSON line per enabled event, with
    the bound context, the level and the time, redacted; below the level it writes nothing."""
    log = logs.get_logger("gateway.test")
    with configured_logs("json") as stream, logs.bound(request_id="r2"):
        log.debug("quiet", detail="x")
        log.info("caller_authorized", subject="team-a:etl", outcome="allowed", token=OPAQUE)
        log.warning("retrying %s of %s", 2, 3)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["caller_authorized", "retrying 2 of 3"]
    assert list(lines[0]) == [
        "subject", "outcome", "token", "event", "request_id", "level", "timestamp",
    ]  # fmt: skip
    assert lines[0]["token"] == logs.REDACTED
    assert [line["level"] for line in lines] == ["info", "warning"]


def test_console_output_still_renders() -> None:
    """The developer's console format gets the same redacted event."""
    log = logs.get_logger("gateway.test")
    with configured_logs("console") as stream:
        log.info("caller_authorized", subject="team-a:etl", detail=f"Bearer {OPAQUE}")
    out = stream.getvalue()
    assert "caller_authorized" in out
    assert "subject=team-a:etl" in out
    assert OPAQUE not in out


def test_module_loggers_follow_capture_logs() -> None:
    """structlog's test capture sees a module logger's events once logs are configured."""
    log = logs.get_logger("gateway.test")
    with configured_logs("json"), structlog.testing.capture_logs() as captured:
        log.info("run_submitted", run_id=7)
    assert captured == [{"event": "run_submitted", "run_id": 7, "log_level": "info"}]


def test_a_module_loggers_stack_and_exception_are_the_callers() -> None:
    """Through a module logger, a stack ends at the line that logged and an exception is
    rendered (redacted), with the level exception() has always had."""
    log = logs.get_logger("gateway.test")
    with configured_logs("json") as stream:
        try:
            raise RuntimeError(f"refused Bearer {OPAQUE}")
        except RuntimeError:
            log.exception("call_failed", stack_info=True)
    line = json.loads(stream.getvalue())
    assert line["level"] == "error"
    assert "RuntimeError: refused Bearer" in line["exception"]
    assert OPAQUE not in stream.getvalue()
    assert "test_a_module_loggers_stack_and_exception_are_the_callers" in line["stack"]
    assert "gateway/logs.py" not in line["stack"]


def test_a_module_logger_can_be_copied() -> None:
    """copy() builds the copy without calling __init__: looking up the missing proxy must
    fail as an attribute error, not recurse."""
    log = logs.get_logger("gateway.test")
    assert copy.copy(log)._proxy is log._proxy


def test_nested_blocks_put_back_what_they_replaced() -> None:
    """An inner bound() over a key the outer one bound gives it back on the way out, even
    out of an exception; the outer one leaves nothing behind."""
    get = structlog.contextvars.get_contextvars
    seen: list[dict[str, object]] = []

    def inner() -> None:
        with logs.bound(namespace="team-b", run_id=4):
            seen.append(get())
            raise KeyError

    with logs.bound(request_id="r3", namespace="team-a"):
        with pytest.raises(KeyError):
            inner()
        assert get() == {"request_id": "r3", "namespace": "team-a"}
    assert seen == [{"request_id": "r3", "namespace": "team-b", "run_id": 4}]
    assert get() == {}
