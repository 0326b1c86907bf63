"""Minting ServiceAccount tokens with the TokenRequest API.

A minted token stands for the tenant's ServiceAccount, so it is treated as a secret: its repr
hides the value and nothing here logs it. Tokens are short-lived by default (10 minutes, the
API's minimum): a verifier that only checks signatures would accept it until expiry even after
the ServiceAccount is deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes_asyncio import client

from gateway.errors import KubernetesError
from gateway.kube.status import Target, translated
from gateway.logs import get_logger

log = get_logger(__name__)

# TokenRequest's usual lifetime (and Flyte's): an hour; the identity settings pass their own.
DEFAULT_EXPIRATION_SECONDS = 3600
# The API server shortens requests above its --service-account-max-token-expiration; warn when
# what we got is this much shorter than what we asked for.
_SHORTENED_SLACK = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class MintedToken:
    """A ServiceAccount token and when it expires (UTC); ``value`` never appears in a repr."""

    value: str = field(repr=False)
    expires_at: datetime
    namespace: str
    service_account: str
    audiences: tuple[str, ...]

    def seconds_left(self, now: datetime | None = None) -> float:
        return (self.expires_at - (now or datetime.now(UTC))).total_seconds()


class TokenMinter:
    """Creates TokenRequests through the process's ``ApiClient`` (owned elsewhere)."""

    def __init__(self, api: Any, *, request_timeout: tuple[float, float]) -> None:
        self._core = client.CoreV1Api(api)
        self._timeout = request_timeout

    async def mint_token(
        self,
        namespace: str,
        service_account: str,
        *,
        audiences: Sequence[str],
        expiration_seconds: int = DEFAULT_EXPIRATION_SECONDS,
    ) -> MintedToken:
        """A token for ``namespace/service_account`` valid for ``audiences``.

        Raises ``KubeNotFound`` when the ServiceAccount does not exist, ``KubeForbidden`` when
        RBAC does not allow lakegate to create its tokens, ``KubeInvalid`` for an expiry the
        API server refuses (below 600 s).
        """
        if not audiences or not all(audiences):
            # Without audiences the API server would mint a token for itself: useless upstream
            # and, worse, accepted by the API server as the tenant's ServiceAccount.
            raise ValueError("a minted token needs at least one non-empty audience")
        target = Target("serviceaccount", namespace, service_account)
        body = client.AuthenticationV1TokenRequest(
            api_version="authentication.k8s.io/v1",
            kind="TokenRequest",
            spec=client.V1TokenRequestSpec(
                audiences=list(audiences), expiration_seconds=expiration_seconds
            ),
        )
        requested_at = datetime.now(UTC)
        with translated("create a token for", target):
            answer = await self._core.create_namespaced_service_account_token(
                service_account, namespace, body, _request_timeout=self._timeout
            )
        status = answer.status
        if status is None or not status.token:
            raise KubernetesError(f"Kubernetes answered a TokenRequest for {target} without token")
        expires_at = _utc(status.expiration_timestamp) or requested_at + timedelta(
            seconds=expiration_seconds
        )
        granted = answer.spec.audiences if answer.spec and answer.spec.audiences else audiences
        if expires_at < requested_at + timedelta(seconds=expiration_seconds) - _SHORTENED_SLACK:
            log.warning(
                "kube_token_expiry_shortened",
                namespace=namespace,
                service_account=service_account,
                requested_seconds=expiration_seconds,
                expires_at=expires_at.isoformat(),
            )
        log.debug(
            "kube_token_minted",
            namespace=namespace,
            service_account=service_account,
            expires_at=expires_at.isoformat(),
        )
        return MintedToken(
            value=status.token,
            expires_at=expires_at,
            namespace=namespace,
            service_account=service_account,
            audiences=tuple(granted),
        )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    # The client parses RFC 3339 into aware datetimes; a naive one would be UTC by convention.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
