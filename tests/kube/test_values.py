"""Values that carry secrets hide them; review outcomes are judged without a server."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.errors import KubernetesError
from gateway.kube.reviews import parse_service_account_username, review_result
from gateway.kube.secrets import SecretData, decode_data
from gateway.kube.status import Target
from gateway.kube.tokens import MintedToken

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


def test_minted_token_repr_hides_the_value() -> None:
    """A minted token printed or logged by accident shows no part of the token."""
    token = MintedToken(
        TOKEN, datetime(2030, 1, 1, tzinfo=UTC), "tenant-a", "etl", audiences=("databricks",)
    )
    assert "eyJ" not in repr(token)
    assert "tenant-a" in repr(token)


def test_minted_token_seconds_left() -> None:
    """seconds_left counts down to expires_at."""
    now = datetime(2030, 1, 1, tzinfo=UTC)
    token = MintedToken(TOKEN, now + timedelta(seconds=600), "n", "sa", ("a",))
    assert token.seconds_left(now) == 600


def test_secret_data_decodes_and_hides_values() -> None:
    """Secret data is decoded from base64 and its repr shows the keys only."""
    data = decode_data({"client_secret": base64.b64encode(b"dose123\n").decode()}, Target("s"))
    assert data["client_secret"] == b"dose123\n"
    assert data.text("client_secret") == "dose123"
    assert data.text("missing") is None
    assert "dose" not in repr(data)
    assert "dose" not in str(data)
    assert "client_secret" in repr(data)


def test_secret_without_data_is_empty() -> None:
    """A secret with no data decodes to an empty mapping."""
    assert decode_data(None, Target("s")) == SecretData()


def test_undecodable_secret_names_the_key_not_the_value() -> None:
    """Bad base64 fails with the key's name and without the value."""
    with pytest.raises(KubernetesError, match="'token'") as info:
        decode_data({"token": "not base64 at all!"}, Target("secret", "n", "s"))
    assert "not base64" not in info.value.message


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("system:serviceaccount:tenant-a:etl", ("tenant-a", "etl")),
        ("system:serviceaccount:tenant-a", None),
        ("system:serviceaccount::etl", None),
        ("system:serviceaccount:a:b:c", None),
        ("alice@example.com", None),
        (None, None),
    ],
)
def test_parse_service_account_username(
    username: str | None, expected: tuple[str, str] | None
) -> None:
    """Only system:serviceaccount:<ns>:<name> names a ServiceAccount."""
    assert parse_service_account_username(username) == expected


def _review(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "authenticated": True,
        "username": "system:serviceaccount:tenant-a:etl",
        "uid": "u-1",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:tenant-a"],
        "audiences": ["lakegate"],
        "error": None,
        "requested": ["lakegate"],
    }
    return {**base, **overrides}


def test_review_of_a_service_account_token() -> None:
    """An authenticated review names the ServiceAccount and its namespace."""
    result = review_result(**_review())
    assert result.authenticated
    assert (result.namespace, result.service_account) == ("tenant-a", "etl")
    assert result.audiences == ("lakegate",)


def test_review_with_authenticated_missing_is_a_failure() -> None:
    """The server omits 'authenticated' on failure; None is treated as false, with its error."""
    result = review_result(**_review(authenticated=None, error="token has expired"))
    assert not result.authenticated
    assert result.error == "token has expired"
    assert result.namespace is None


def test_review_for_other_audiences_is_a_failure() -> None:
    """A token whose audiences miss every requested one is not accepted."""
    result = review_result(**_review(audiences=["billing-api"]))
    assert not result.authenticated
    assert result.error is not None
    assert "billing-api" in result.error


def test_review_without_audiences_in_the_answer_fails_closed() -> None:
    """Asked for audiences but told none: not accepted."""
    assert not review_result(**_review(audiences=None)).authenticated


def test_review_of_a_user_token_has_no_namespace() -> None:
    """A user (not a ServiceAccount) authenticates without namespace or ServiceAccount."""
    result = review_result(**_review(username="alice@example.com"))
    assert result.authenticated
    assert result.namespace is None
