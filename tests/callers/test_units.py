"""Pure pieces of caller authentication: credentials, reviews, claims, grants, key hashes."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest

from gateway.api.callers_gate import Credential, credential_from
from gateway.api.callers_jwt import namespaces_from_claims, peek_issuer, unverified_claims
from gateway.api.callers_keys import ApiKeyAuthenticator, sha256_hex
from gateway.api.callers_kube import KubernetesAuthenticator, identity_from_review
from gateway.api.callers_policy import Authorizer, Grant, caller_for
from gateway.api.callers_types import Caller, Identity, Refused
from gateway.settings import (
    ApiKeySettings,
    GrantSettings,
    JwtIssuer,
    KubernetesCallers,
    parse_selector,
)
from tests.support.clock import Clock

# --- credentials ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Authorization": "Bearer abc"}, Credential("bearer", "abc")),
        ({"Authorization": "bearer   abc  "}, Credential("bearer", "abc")),
        ({"X-API-Key": "k1"}, Credential("api_key", "k1")),
        ({"Authorization": "Bearer k1", "X-API-Key": "k1"}, Credential("api_key", "k1")),
    ],
)
def test_the_credential_is_read_from_either_header(
    headers: dict[str, str], expected: Credential | None
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
    """repr and str of a Credential name its kind only."""
    credential = Credential("bearer", "s3cr3t-value")
    assert "s3cr3t" not in repr(credential)
    assert "s3cr3t" not in str(credential)


# --- TokenReview answers --------------------------------------------------------------------


@dataclass
class Answer:
    authenticated: bool
    username: str | None = "system:serviceaccount:team-a:runner"
    namespace: str | None = "team-a"
    audiences: Sequence[str] = ("lakegate",)
    error: str | None = None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Answer(True), Identity("system:serviceaccount:team-a:runner", "kubernetes", "team-a")),
        (Answer(False), "the Kubernetes API did not authenticate the token"),
        (
            Answer(True, audiences=("other",)),
            "the token was not issued for this gateway's audience",
        ),
        (Answer(True, audiences=()), "the token was not issued for this gateway's audience"),
        (Answer(True, username=None), "the Kubernetes API named no user for the token"),
        (Answer(True, username="alice", namespace=None), Identity("alice", "kubernetes")),
    ],
)
def test_reviews_are_judged_including_their_audiences(answer: Answer, expected: object) -> None:
    """Authenticated, for our audience, with a user: an identity; otherwise the reason."""
    assert identity_from_review(answer, ["lakegate"]) == expected


@dataclass
class FakeReviewer:
    answer: Answer
    calls: list[str] = field(default_factory=list)

    async def review(self, token: str, audiences: Sequence[str]) -> Answer:
        self.calls.append(token)
        return self.answer


def _token(exp: int) -> str:
    return jwt.encode({"exp": exp, "sub": "x"}, "k" * 32, algorithm="HS256")


async def test_a_success_is_cached_no_longer_than_the_token_lives() -> None:
    """A token expiring in 10 s is reviewed again after 10 s, though cache_seconds is 30."""
    clock = Clock(0.0)
    reviewer = FakeReviewer(Answer(True))
    authn = KubernetesAuthenticator(
        KubernetesCallers(cache_seconds=30), reviewer, clock=clock, wall_clock=lambda: 1_000.0
    )
    token = _token(1_010)
    await authn.authenticate(token)
    clock.now = 9.0
    await authn.authenticate(token)
    assert len(reviewer.calls) == 1
    clock.now = 10.5
    await authn.authenticate(token)
    assert len(reviewer.calls) == 2


async def test_a_refusal_is_cached_briefly() -> None:
    """A refused token is not reviewed again within failure_cache_seconds, then it is."""
    clock = Clock(0.0)
    reviewer = FakeReviewer(Answer(False))
    authn = KubernetesAuthenticator(
        KubernetesCallers(failure_cache_seconds=5), reviewer, clock=clock
    )
    for now in (0.0, 4.0, 5.5):
        clock.now = now
        with pytest.raises(Refused):
            await authn.authenticate("opaque")
    assert len(reviewer.calls) == 2


# --- JWT claims -----------------------------------------------------------------------------


def test_unverified_claims_only_for_jwt_shapes() -> None:
    """A compact JWT's payload is read; anything else gives None."""
    token = jwt.encode({"iss": "https://i", "sub": "s"}, "k" * 32, algorithm="HS256")
    assert peek_issuer(token) == "https://i"
    for garbage in ("", "abc", "a.b.c", "dapi123", "x" * 20_000):
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


# --- grants and selectors -------------------------------------------------------------------


def _grants(*grants: dict[str, Any]) -> list[Grant]:
    return [Grant.from_settings(GrantSettings.model_validate(g)) for g in grants]


def test_grants_apply_to_subjects_matching_their_glob() -> None:
    """A glob grant adds namespaces to every matching subject, and only to those."""
    grants = _grants({"subject": "system:serviceaccount:airflow:*", "namespaces": ["team-b"]})
    scheduler = Identity("system:serviceaccount:airflow:scheduler", "kubernetes", "airflow")
    other = Identity("system:serviceaccount:etl:runner", "kubernetes", "etl")
    assert caller_for(scheduler, grants).may_act_for("team-b")
    assert caller_for(scheduler, grants).may_act_for("airflow")
    assert not caller_for(other, grants).may_act_for("team-b")


def test_none_identities_may_act_everywhere() -> None:
    """The anonymous caller of method none may act for any namespace."""
    assert caller_for(Identity("anonymous", "none"), []).may_act_for("anything")


@dataclass
class Labels:
    labels: dict[str, dict[str, str]]
    reads: int = 0

    async def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        self.reads += 1
        return self.labels.get(name)


async def test_selectors_read_labels_once_and_refuse_unknown_namespaces() -> None:
    """A selector grant matches labelled namespaces; a missing one is refused; labels are
    cached so repeated checks read them once."""
    labels = Labels({"team-a": {"tier": "batch"}, "team-b": {"tier": "web"}})
    authorizer = Authorizer(labels, cache_seconds=30)
    caller = Caller("apikey:batch", "api_key", selectors=(parse_selector("tier=batch"),))
    assert await authorizer.allows(caller, "team-a")
    assert await authorizer.allows(caller, "team-a")
    assert not await authorizer.allows(caller, "team-b")
    assert not await authorizer.allows(caller, "ghost")
    assert not await authorizer.allows(caller, "Not Valid")
    assert labels.reads == 3


async def test_names_are_decided_without_reading_labels() -> None:
    """A caller's own and granted names need no label read."""
    labels = Labels({})
    authorizer = Authorizer(labels, cache_seconds=30)
    caller = Caller("x", "kubernetes", home_namespace="team-a", namespaces=frozenset({"team-b"}))
    assert await authorizer.allows(caller, "team-a")
    assert await authorizer.allows(caller, "team-b")
    assert not await authorizer.allows(caller, "team-c")
    assert labels.reads == 0


# --- API keys -------------------------------------------------------------------------------


async def test_keys_match_by_sha256_only() -> None:
    """The configured sha256 admits its key; near misses, empty and huge keys are refused."""
    key = "lgk_unit_0123456789"
    authn = ApiKeyAuthenticator(
        [ApiKeySettings(name="unit", sha256=sha256_hex(key), namespaces=("team-a",))]
    )
    identity = await authn.authenticate(key)
    assert identity.subject == "apikey:unit"
    assert identity.namespaces == frozenset({"team-a"})
    for wrong in (key + "x", key[:-1], "", "k" * 600):
        with pytest.raises(Refused):
            await authn.authenticate(wrong)


async def test_scrypt_keys_are_checked_off_the_loop_and_remembered() -> None:
    """A scrypt entry admits its key; the answer is cached so the second check is free."""
    key = "lgk_scrypt_key"
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(key.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    encoded = (
        f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    )
    authn = ApiKeyAuthenticator([ApiKeySettings(name="salty", hash=encoded)])
    assert (await authn.authenticate(key)).subject == "apikey:salty"
    assert (await authn.authenticate(key)).subject == "apikey:salty"
    with pytest.raises(Refused):
        await authn.authenticate("lgk_other")
