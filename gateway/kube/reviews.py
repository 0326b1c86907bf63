"""Checking a caller's token with the TokenReview API.

A failed review is an answer, not an error: the API server replies 201 with ``authenticated``
left out and an ``error`` string, and so do we (``authenticated=False``). Errors are reserved
for not being able to ask (RBAC, an unreachable API server). The audiences the server says the
token is valid for must overlap the ones we asked about, or the review counts as failed: a
token minted for another service must not be accepted here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client

from gateway.kube.status import Target, translated

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True, slots=True)
class ReviewResult:
    """Who a token belongs to, if anyone; ``namespace``/``service_account`` for SA tokens."""

    authenticated: bool
    username: str | None = None
    uid: str | None = None
    groups: tuple[str, ...] = ()
    namespace: str | None = None
    service_account: str | None = None
    audiences: tuple[str, ...] = ()
    error: str | None = None


def parse_service_account_username(username: str | None) -> tuple[str, str] | None:
    """``system:serviceaccount:<ns>:<name>`` -> (ns, name); None for any other user."""
    if not username or not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = username[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


def review_result(
    *,
    authenticated: bool | None,
    username: str | None,
    uid: str | None,
    groups: Iterable[str] | None,
    audiences: Iterable[str] | None,
    error: str | None,
    requested: Sequence[str],
) -> ReviewResult:
    """Judge a TokenReview status; pure, so every outcome is tested without a server."""
    granted = tuple(audiences or ())
    if not authenticated:
        # The API server omits ``authenticated`` on failure: None means no.
        return ReviewResult(False, audiences=granted, error=error or "token not authenticated")
    if requested and not set(granted) & set(requested):
        return ReviewResult(
            False,
            audiences=granted,
            error=f"token audiences {list(granted)} do not include any of {list(requested)}",
        )
    account = parse_service_account_username(username)
    return ReviewResult(
        True,
        username=username,
        uid=uid,
        groups=tuple(groups or ()),
        namespace=account[0] if account else None,
        service_account=account[1] if account else None,
        audiences=granted,
    )


class TokenReviewer:
    """Creates TokenReviews through the process's ``ApiClient`` (owned elsewhere)."""

    def __init__(self, api: Any, *, request_timeout: tuple[float, float]) -> None:
        self._authn = client.AuthenticationV1Api(api)
        self._timeout = request_timeout

    async def review(self, token: str, audiences: Sequence[str]) -> ReviewResult:
        """Ask the API server who ``token`` belongs to, for any of ``audiences``."""
        if not token.strip():
            return ReviewResult(False, error="empty token")
        body = client.V1TokenReview(
            api_version="authentication.k8s.io/v1",
            kind="TokenReview",
            spec=client.V1TokenReviewSpec(token=token, audiences=list(audiences) or None),
        )
        with translated("review a token with", Target("tokenreviews")):
            answer = await self._authn.create_token_review(body, _request_timeout=self._timeout)
        status = answer.status
        user = status.user if status is not None else None
        return review_result(
            authenticated=status.authenticated if status is not None else None,
            username=user.username if user is not None else None,
            uid=user.uid if user is not None else None,
            groups=user.groups if user is not None else None,
            audiences=status.audiences if status is not None else None,
            error=status.error if status is not None else None,
            requested=list(audiences),
        )
