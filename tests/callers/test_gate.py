"""Which credential a request carries: read from either header, never printed."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from gateway.callers.gate import CallerCredential, credential_from
from gateway.callers.types import Refused
from gateway.errors import InvalidRequest


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
    ],
)
def test_malformed_credentials_are_refused(headers: dict[str, str]) -> None:
    """Other schemes and empty values are refused."""
    with pytest.raises(Refused):
        credential_from(headers)


@pytest.mark.parametrize(
    ("pairs", "header"),
    [
        ([("Authorization", "Bearer a"), ("Authorization", "Bearer b")], "Authorization"),
        ([("Authorization", "Bearer a"), ("authorization", "Bearer a")], "Authorization"),
        ([("X-API-Key", "a"), ("X-API-Key", "b")], "X-API-Key"),
        ([("Authorization", "Bearer a"), ("X-API-Key", "b")], "X-API-Key"),
    ],
)
def test_repeated_or_two_credentials_are_a_400_naming_the_header(
    pairs: list[tuple[str, str]], header: str
) -> None:
    """Two Authorization headers, two X-API-Key headers or two different credentials are
    refused as a bad request naming the header, not guessed between."""
    with pytest.raises(InvalidRequest) as info:
        credential_from(CIMultiDict(pairs))
    assert info.value.status == 400
    assert info.value.fields() == {"field": f"header {header}"}
    assert header in info.value.message


def test_a_credential_never_prints_its_value() -> None:
    """repr and str of a CallerCredential name its kind only."""
    credential = CallerCredential("bearer", "s3cr3t-value")
    assert "s3cr3t" not in repr(credential)
    assert "s3cr3t" not in str(credential)
