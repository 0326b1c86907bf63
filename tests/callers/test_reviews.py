"""TokenReview answers: judged with their audiences, cached no longer than they hold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jwt
import pytest

from gateway.callers.reviews import (
    REVIEW_BURST,
    REVIEWS_PER_SECOND,
    KubernetesAuthenticator,
    ReviewsThrottled,
    identity_from_review,
)
from gateway.callers.types import Identity, Refused
from gateway.settings import KubernetesCallers
from tests.support.kube import FakeKube


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


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _token(exp: int) -> str:
    return jwt.encode({"exp": exp, "sub": "x"}, "k" * 32, algorithm="HS256")


async def test_a_success_is_cached_no_longer_than_the_token_lives() -> None:
    """A token expiring in 10 s is reviewed again after 10 s, though cache_seconds is 30."""
    clock = Clock(0.0)
    reviewer = FakeKube(review_answer=Answer(True))
    authn = KubernetesAuthenticator(
        KubernetesCallers(cache_seconds=30), reviewer, clock=clock, wall_clock=lambda: 1_000.0
    )
    token = _token(1_010)
    await authn.authenticate(token)
    clock.now = 9.0
    await authn.authenticate(token)
    assert len(reviewer.reviews) == 1
    clock.now = 10.5
    await authn.authenticate(token)
    assert len(reviewer.reviews) == 2


async def test_a_refusal_is_cached_briefly() -> None:
    """A refused token is not reviewed again within failure_cache_seconds, then it is."""
    clock = Clock(0.0)
    reviewer = FakeKube(review_answer=Answer(False))
    authn = KubernetesAuthenticator(
        KubernetesCallers(failure_cache_seconds=5), reviewer, clock=clock
    )
    for now in (0.0, 4.0, 5.5):
        clock.now = now
        with pytest.raises(Refused):
            await authn.authenticate("opaque")
    assert len(reviewer.reviews) == 2


async def test_reviews_of_unknown_tokens_are_rate_limited_with_a_503() -> None:
    """A flood of made-up tokens costs at most the burst of TokenReviews; the rest are 503
    with a Retry-After (the token may be fine), not cached, and reviewed once the bucket
    refills; a token already reviewed is answered from the cache meanwhile."""
    clock = Clock(0.0)
    reviewer = FakeKube(review_answer=Answer(False))
    authn = KubernetesAuthenticator(KubernetesCallers(), reviewer, clock=clock)
    throttled: list[ReviewsThrottled] = []
    for i in range(REVIEW_BURST * 3):
        try:
            await authn.authenticate(f"made-up-{i}")
        except Refused:
            pass
        except ReviewsThrottled as exc:
            throttled.append(exc)
    assert len(reviewer.reviews) == REVIEW_BURST
    assert len(throttled) == REVIEW_BURST * 2
    assert throttled[0].status == 503
    assert 0 < throttled[0].retry_after <= 1 / REVIEWS_PER_SECOND
    with pytest.raises(Refused):
        await authn.authenticate("made-up-0")  # cached refusal: no review needed
    clock.now = 1.0
    with pytest.raises(Refused):
        await authn.authenticate(f"made-up-{REVIEW_BURST}")
    assert len(reviewer.reviews) == REVIEW_BURST + 1
