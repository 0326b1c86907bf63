"""Which credential a request carries: read from either header, never printed."""

from __future__ import annotations

import pytest

from gateway.callers.gate import CallerCredential, credential_from
from gateway.callers.types import Refused


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Authorization": "Bearer abc"}, CallerCredential("bearer", "abc")),
        ({"Authorization": "bearer   abc  "}, CallerCredential("bearer", "abc")),
        ({"X-API-Key": "k1"}, CallerCredential("api_key", "k1")),
        ({"Authorization": "Bearer k1", "X-API-Key": "k1"}, CallerCredential("api_key", "k1")),
    ],
)
def test_the_credential_is_read_from_either_header(
    headers: dict[str, str], expected: CallerCredential | None
) -> None:
    """Bearer or X-API-Key; the same value in both is one credential."""
    assert credential_from(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
        {"X-API-Key": " "},
        {"Authorization": "Bearer a", "X-API-Key": "b"},
    ],
)
def test_malformed_or_ambiguous_credentials_are_refused(headers: dict[str, str]) -> None:
    """Other schemes, empty values and two different credentials are refused, not guessed."""
    with pytest.raises(Refused):
        credential_from(headers)


def test_a_credential_never_prints_its_value() -> None:
    """repr and str of a CallerCredential name its kind only."""
    credential = CallerCredential("bearer", "s3cr3t-value")
    assert "s3cr3t" not in repr(credential)
    assert "s3cr3t" not in str(credential)
