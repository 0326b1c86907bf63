"""Name patterns anchor at the very end (\\Z): a trailing newline is not part of a name."""

from __future__ import annotations

import re

import pytest

from gateway.api import schemas
from gateway.api.middlewares import _SANE_REQUEST_ID
from gateway.settings import NAMESPACE_RE, OBJECT_NAME_RE
from gateway.settings.callers import _KEY_NAME_RE, _SHA256_RE

PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (NAMESPACE_RE, "team-a"),
    (OBJECT_NAME_RE, "databricks-token"),
    (schemas._IDEMPOTENCY_KEY, "job-42"),
    (schemas._RUN_ID, "42"),
    (_SANE_REQUEST_ID, "req-1"),
    (_KEY_NAME_RE, "ci-key"),
    (_SHA256_RE, "0" * 64),
]


@pytest.mark.parametrize(("pattern", "name"), PATTERNS, ids=[p.pattern for p, _ in PATTERNS])
def test_a_name_with_a_trailing_newline_does_not_match(pattern: re.Pattern[str], name: str) -> None:
    """The name matches; the same name followed by a newline does not."""
    assert pattern.match(name)
    assert not pattern.match(name + "\n")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"spec": {"run_name": "\ud800"}}, "spec.run_name"),
        ({"spec": {"tasks": [{"task_key": "\udfff"}]}}, "spec.tasks[0].task_key"),
        ({"spec": {}, "labels": {"team": "\ud800"}}, "labels.team"),
    ],
)
def test_a_lone_surrogate_is_refused_naming_its_field(body: object, field: str) -> None:
    """A string JSON's \\u escapes allow but UTF-8 cannot encode is found, with its path."""
    assert schemas.unencodable(body) == field


def test_real_text_is_encodable() -> None:
    """Paired surrogates (an emoji) and plain text pass."""
    assert schemas.unencodable({"spec": {"run_name": "etl \U0001f600", "n": [1, "é"]}}) is None
