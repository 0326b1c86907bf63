"""Which Databricks identity a namespace runs as.

This is the static resolver of the first slice: a namespace's identity comes from the tenant
policy in tenants.yaml (a PAT or an OAuth M2M client, inline or named by an environment
variable). The Kubernetes-backed resolver of the identity issue implements the same protocol.
A namespace with no identity is refused: it never runs as anybody else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from gateway.databricks.auth import TokenProvider
from gateway.databricks.jobs import Workspace
from gateway.errors import ConfigError, CredentialUnavailable, HostNotAllowed, IdentityNotConfigured
from gateway.identity.credentials import OAuthM2MCredential, PatCredential
from gateway.settings import OAuthM2MIdentity, PatIdentity, Settings, resolve_secret


@dataclass(frozen=True, slots=True)
class ResolvedIdentity:
    """A namespace's workspace and credential; ``key`` names the identity without a secret."""

    namespace: str
    workspace_name: str
    workspace: Workspace
    credential: TokenProvider
    key: str


class IdentityResolver(Protocol):
    async def resolve(self, namespace: str) -> ResolvedIdentity: ...


def _identity_key(kind: str, host: str, subject: str) -> str:
    # Runs of one identity are listed together by the poller; the key must tell identities
    # apart without carrying a secret, so a PAT is represented by a digest of itself.
    digest = hashlib.sha256(subject.encode()).hexdigest()[:16]
    return f"{kind}:{host}:{digest}"


class StaticResolver:
    """Identities declared in the tenant policy; credentials built once and kept."""

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession,
        environ: Mapping[str, str],
    ) -> None:
        self._settings = settings
        self._session = session
        self._environ = environ
        self._resolved: dict[str, ResolvedIdentity] = {}

    async def resolve(self, namespace: str) -> ResolvedIdentity:
        cached = self._resolved.get(namespace)
        if cached is not None:
            return cached
        resolved = self._build(namespace)
        self._resolved[namespace] = resolved
        return resolved

    async def aclose(self) -> None:
        """Stop token refreshes in flight; the composition root calls this at shutdown."""
        for resolved in self._resolved.values():
            closer = getattr(resolved.credential, "aclose", None)
            if closer is not None:
                await closer()
        self._resolved.clear()

    def _build(self, namespace: str) -> ResolvedIdentity:
        policy = self._settings.tenants.policy(namespace)
        if policy is None or policy.identity is None:
            raise IdentityNotConfigured(
                f"namespace '{namespace}' has no Databricks identity: add it under "
                "'namespaces' in the tenants file with an identity (type pat or oauth-m2m)",
                namespace=namespace,
            )
        workspace_name = self._settings.tenants.workspace_name(namespace)
        settings = self._settings.workspaces.get(workspace_name) if workspace_name else None
        if workspace_name is None or settings is None:
            raise HostNotAllowed(
                f"namespace '{namespace}' names no workspace from the allow-list: set "
                "'workspace' in its tenant policy or 'defaults.workspace'",
                namespace=namespace,
            )
        workspace = Workspace(
            host=settings.host,
            api_version=settings.api_version,
            max_concurrent_requests=settings.max_concurrent_requests,
        )
        identity = policy.identity
        try:
            if getattr(identity, "secret", None) is not None or not isinstance(
                identity, PatIdentity | OAuthM2MIdentity
            ):
                raise IdentityNotConfigured(
                    f"namespace '{namespace}': identity type '{identity.type}' with Kubernetes "
                    "objects needs the Kubernetes resolver (set kubernetes.mode)",
                    namespace=namespace,
                )
            if isinstance(identity, PatIdentity):
                token = resolve_secret(identity.token, identity.token_env, self._environ)
                credential: TokenProvider = PatCredential(token, namespace=namespace)
                key = _identity_key("pat", workspace.host, token)
            elif isinstance(identity, OAuthM2MIdentity):
                secret = resolve_secret(
                    identity.client_secret, identity.client_secret_env, self._environ
                )
                credential = OAuthM2MCredential(
                    self._session,
                    host=workspace.host,
                    client_id=identity.client_id or "",
                    client_secret=secret,
                    namespace=namespace,
                )
                key = _identity_key("oauth-m2m", workspace.host, identity.client_id or "")
            else:  # pragma: no cover - the settings union is closed
                raise TypeError(type(identity).__name__)
        except ConfigError as exc:
            raise CredentialUnavailable(
                f"namespace '{namespace}': {exc.message}",
                namespace=namespace,
                source="tenants file",
            ) from exc
        return ResolvedIdentity(
            namespace=namespace,
            workspace_name=workspace_name,
            workspace=workspace,
            credential=credential,
            key=key,
        )
