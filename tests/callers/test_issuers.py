"""JWT claims: read unverified only for routing, mapped to namespaces once verified."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from gateway.callers.issuers import namespaces_from_claims, peek_issuer, unverified_claims
from gateway.settings import JwtIssuer


def test_unverified_claims_are_read_from_a_jwt() -> None:
    """A compact JWT's payload is read, unverified, for its issuer."""
    token = jwt.encode({"iss": "https://i", "sub": "s"}, "k" * 32, algorithm="HS256")
    assert peek_issuer(token) == "https://i"


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "dapi123", "x" * 20_000])
def test_unverified_claims_only_for_jwt_shapes(garbage: str) -> None:
    """Anything that is not a compact JWT gives no claims and no issuer."""
    assert unverified_claims(garbage) is None
    assert peek_issuer(garbage) is None


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"namespace": "team-a"}, {"team-a"}),
        ({"namespace": ["team-a", "team-b"]}, {"team-a", "team-b"}),
        ({"namespace": "Not_A_Namespace"}, set()),
        ({"namespace": 7}, set()),
        ({"repository": "org/repo-a"}, {"team-c", "team-d"}),
        ({"repository": "org/other"}, set()),
        ({"repository": "org/repo-a", "namespace": "team-a"}, {"team-a", "team-c", "team-d"}),
        ({}, set()),
    ],
)
def test_claims_map_to_namespaces(claims: dict[str, Any], expected: set[str]) -> None:
    """namespace_claim values and claim_map entries both give namespaces; junk is dropped."""
    issuer = JwtIssuer.model_validate(
        {
            "issuer": "https://issuer.example",
            "audiences": ["lakegate"],
            "namespace_claim": "namespace",
            "claim_map": [{"claim": "repository", "values": {"org/repo-a": ["team-c", "team-d"]}}],
        }
    )
    assert namespaces_from_claims(issuer, claims) == expected
