"""One fake Kubernetes client for the whole test tree: the calls of ``gateway.kube.KubeClient``
that identities and callers make, in memory, each one recorded.

- ``read_secret``: Secrets by (namespace, name), values as text or bytes; a missing one is
  ``KubeNotFound``, worded as the API server words it. ``forbid`` refuses one as RBAC does,
  ``refusals`` fails one with any error, ``hold`` keeps every read waiting until released.
- ``mint_token``: recorded in ``mints``; answered by ``minter`` when one is given (a callable
  as the kube edge's TokenRequest: namespace, ServiceAccount, audiences, seconds), else
  refused as RBAC would (``mint_refusal`` replaces the refusal, say with an
  ``AssertionError`` where minting would be a bug).
- ``review``: answers ``review_answer`` and records each token in ``reviews``.
- ``namespace_labels``: from ``labels``; a namespace not there does not exist (None).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.databricks.auth import AccessToken
from gateway.errors import KubernetesError
from gateway.kube.secrets import SecretData
from gateway.kube.status import StatusInfo, Target, error_from_status

RBAC_MESSAGE = 'secrets "databricks-oauth" is forbidden: User "lakegate" cannot get resource'


def secret_error(namespace: str, name: str, code: int, message: str) -> KubernetesError:
    """The error the kube edge raises for a Secret read answered with ``code``."""
    reason = {403: "Forbidden", 404: "NotFound"}.get(code)
    return error_from_status(
        code,
        StatusInfo(code=code, reason=reason, message=message),
        action="read",
        target=Target("secret", namespace, name),
    )


def mint_refused(namespace: str, service_account: str) -> KubernetesError:
    """The error the kube edge raises when RBAC refuses a TokenRequest."""
    return error_from_status(
        403,
        StatusInfo(code=403, reason="Forbidden", message="cannot create serviceaccounts/token"),
        action="create a token for",
        target=Target("serviceaccount", namespace, service_account),
    )


# (namespace, ServiceAccount, audiences, expiration seconds), as the kube edge mints.
Minter = Callable[[str, str, list[str], int], Awaitable[AccessToken]]


@dataclass(frozen=True)
class Minted:
    """A TokenRequest's answer as ``KubeClient.mint_token`` gives it."""

    value: str
    expires_at: datetime | None = None


class FakeKube:
    def __init__(
        self,
        minter: Minter | None = None,
        *,
        review_answer: Any = None,
        labels: Mapping[str, Mapping[str, str]] | None = None,
        mint_refusal: Exception | None = None,
    ) -> None:
        self.secrets: dict[tuple[str, str], Mapping[str, str | bytes]] = {}
        self.secret_labels: dict[tuple[str, str], dict[str, str]] = {}
        self.refusals: dict[tuple[str, str], KubernetesError] = {}
        self.reads: list[tuple[str, str]] = []
        self.gate: asyncio.Event | None = None
        self.mints: list[tuple[str, str, list[str], int]] = []
        self.minter = minter
        self.mint_refusal = mint_refusal
        self.review_answer = review_answer
        self.reviews: list[str] = []
        self.labels: dict[str, Mapping[str, str]] = dict(labels or {})
        self.label_reads = 0

    # --- Secrets ------------------------------------------------------------------------

    def put(self, namespace: str, name: str, **values: str) -> None:
        self.secrets[(namespace, name)] = dict(values)

    def label_secret(self, namespace: str, name: str, **labels: str) -> None:
        """Give the Secret labels (``lakegate.io/databricks-enabled`` as the key's value)."""
        self.secret_labels[(namespace, name)] = dict(labels)

    def offer(self, namespace: str, name: str, **values: str) -> None:
        """A Secret labelled lakegate.io/databricks-enabled=true, which requests may name."""
        self.put(namespace, name, **values)
        self.secret_labels[(namespace, name)] = {"lakegate.io/databricks-enabled": "true"}

    def hold(self) -> asyncio.Event:
        """Hold every Secret read until the returned event is set."""
        self.gate = asyncio.Event()
        return self.gate

    def forbid(self, namespace: str, name: str, message: str = RBAC_MESSAGE) -> None:
        self.refusals[(namespace, name)] = secret_error(namespace, name, 403, message)

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        self.reads.append((namespace, name))
        if self.gate is not None:
            await self.gate.wait()
        if (namespace, name) in self.refusals:
            raise self.refusals[(namespace, name)]
        if (namespace, name) not in self.secrets:
            raise secret_error(namespace, name, 404, f'secrets "{name}" not found')
        values = self.secrets[(namespace, name)]
        data = SecretData({k: v.encode() if isinstance(v, str) else v for k, v in values.items()})
        data.labels = dict(self.secret_labels.get((namespace, name), {}))
        return data

    # --- TokenRequest, TokenReview, Namespaces ------------------------------------------

    async def mint_token(
        self,
        namespace: str,
        service_account: str,
        *,
        audiences: Sequence[str],
        expiration_seconds: int = 3600,
    ) -> Any:
        self.mints.append((namespace, service_account, list(audiences), expiration_seconds))
        if self.minter is None:
            raise self.mint_refusal or mint_refused(namespace, service_account)
        token = await self.minter(namespace, service_account, list(audiences), expiration_seconds)
        expires = token.expires_at
        return Minted(
            token.value, None if expires is None else datetime.fromtimestamp(expires, UTC)
        )

    async def review(self, token: str, audiences: Sequence[str]) -> Any:
        self.reviews.append(token)
        if self.review_answer is None:
            raise AssertionError("this test set no TokenReview answer")
        return self.review_answer

    async def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        self.label_reads += 1
        return self.labels.get(name)
