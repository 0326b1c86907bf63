"""Kubernetes ServiceAccount tokens, checked with TokenReview for the operator's audiences.

Answers are cached by the SHA-256 of the token: a success for ``cache_seconds`` but never past
the token's own ``exp`` (read unverified: it only shortens the cache), a refusal for
``failure_cache_seconds``. A deleted ServiceAccount is therefore refused at the latest
``cache_seconds`` after its deletion. Not being able to ask (RBAC, an unreachable API server)
is an error, never cached and never mistaken for a refusal.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.callers.issuers import unverified_claims
from gateway.callers.types import CredentialChecksBusy, Identity, Refused, bounded
from gateway.settings import NAMESPACE_RE, KubernetesCallers
from gateway.singleflight import TtlCache


class ReviewAnswer(Protocol):
    """The parts of a TokenReview's status lakegate reads (``gateway.kube.ReviewResult``)."""

    @property
    def authenticated(self) -> bool: ...
    @property
    def username(self) -> str | None: ...
    @property
    def namespace(self) -> str | None: ...
    @property
    def audiences(self) -> Sequence[str]: ...
    @property
    def error(self) -> str | None: ...


class Reviewer(Protocol):
    """Reviews a token with the Kubernetes API; the composition root passes its KubeClient."""

    async def review(self, token: str, audiences: Sequence[str]) -> ReviewAnswer: ...


# What the cache holds: the identity, or the reason it was refused.
Outcome = Identity | str


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def identity_from_review(answer: ReviewAnswer, audiences: Sequence[str]) -> Outcome:
    """Judge a review; pure. The audiences are checked here too, whatever the edge did."""
    if not answer.authenticated:
        return "the Kubernetes API did not authenticate the token"
    if not set(answer.audiences) & set(audiences):
        return "the token was not issued for this gateway's audience"
    username = answer.username
    if not username:
        return "the Kubernetes API named no user for the token"
    namespace = answer.namespace
    home = namespace if namespace and NAMESPACE_RE.match(namespace) else None
    return Identity(subject=bounded(username), method="kubernetes", home_namespace=home)


# TokenReviews for tokens not in the cache, per second and in one burst: a flood of made-up
# tokens must not turn into a flood on the API server.
REVIEWS_PER_SECOND = 20.0
REVIEW_BURST = 40


class ReviewsThrottled(CredentialChecksBusy):
    """Too many unknown tokens to review right now."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("Kubernetes tokens", retry_after)


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``. Pure but for the clock."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._rate, self._burst, self._clock = rate, float(burst), clock
        self._level, self._at = float(burst), clock()

    def take(self) -> float:
        """0 when a token was taken; else the seconds until one will be there."""
        now = self._clock()
        self._level = min(self._burst, self._level + (now - self._at) * self._rate)
        self._at = now
        if self._level >= 1:
            self._level -= 1
            return 0.0
        return (1 - self._level) / self._rate


class KubernetesAuthenticator:
    def __init__(
        self,
        settings: KubernetesCallers,
        reviewer: Reviewer,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._reviewer = reviewer
        self._wall = wall_clock
        self._cache: TtlCache[str, Outcome] = TtlCache(settings.cache_size, clock=clock)
        self._bucket = TokenBucket(REVIEWS_PER_SECOND, REVIEW_BURST, clock)

    async def authenticate(self, token: str) -> Identity:
        outcome = await self._cache.get(token_key(token), lambda: self._review(token))
        if isinstance(outcome, str):
            raise Refused(outcome)
        return outcome

    async def _review(self, token: str) -> tuple[Outcome, float]:
        wait = self._bucket.take()
        if wait > 0:
            # Not a refusal (the token may be fine) and not cached: the caller retries.
            raise ReviewsThrottled(wait)
        audiences = self.settings.audiences
        answer = await self._reviewer.review(token, audiences)
        outcome = identity_from_review(answer, audiences)
        if isinstance(outcome, str):
            return outcome, self.settings.failure_cache_seconds
        return outcome, self._success_ttl(token)

    def _success_ttl(self, token: str) -> float:
        ttl = self.settings.cache_seconds
        exp = (unverified_claims(token) or {}).get("exp")
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            ttl = min(ttl, exp - self._wall())
        return ttl

    async def aclose(self) -> None:
        await self._cache.aclose()
