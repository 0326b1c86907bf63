"""Before a run that clones from Azure DevOps is submitted: the principal's Git credential
holds an Entra ID token for Azure DevOps that is valid well past the run's start.

One write per principal (``Principal.fingerprint``: a workspace host and whom Databricks sees
there) however many runs wait for it: the writes go through a single-flight ``TtlCache``
whose value is only what lakegate wrote (the credential id and until when its token is
valid), kept until the token is inside its refresh-ahead window (``policy.refresh_ahead``).
A write asks Entra for a new token with the namespace's own identity, lists the principal's
credentials, and updates its ``azureDevOpsServices`` one, or creates it when there is none;
a create refused because one appeared meanwhile (another replica) is followed by a list and
an update, so no principal ever gets two. The token itself is held only while it is sent.

Refusals name their cause: Entra refusing the DevOps token (the principal has no access to
the resource), the Git Credentials API refusing the write; outages (5xx, 429, timeouts)
are transient, so the submission waits and tries again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gateway.databricks.auth import AccessToken
from gateway.databricks.git_credentials import (
    AZURE_DEVOPS,
    GitCredentialsClient,
    already_exists,
    same_provider,
)
from gateway.errors import DatabricksError, IdentityError, TokenEndpointError
from gateway.gitcreds import policy
from gateway.gitcreds.errors import GitCredentialError
from gateway.identity.entra_resources import EntraResourceTokens
from gateway.identity.resolver import ResolvedIdentity
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.model import RunRecord
from gateway.secrets_registry import remember
from gateway.settings import TenantsSettings
from gateway.singleflight import TtlCache

log = get_logger(__name__)

Clock = Callable[[], float]
# Principals lakegate keeps a credential for; a principal forgotten is written again.
MAX_PRINCIPALS = 4096
SOURCE = "Git credential (azureDevOpsServices)"


@dataclass(frozen=True, slots=True)
class Held:
    """What lakegate knows of a credential it wrote: never the token."""

    credential_id: int
    valid_until: float  # on the keeper's clock


def principal_key(identity: ResolvedIdentity) -> str:
    """One key per Databricks principal: namespaces sharing an identity share its credential."""
    if identity.principal is not None:
        return identity.principal.fingerprint
    return f"{identity.workspace.host}|{identity.key}"


class GitCredentialKeeper:
    """Keeps Azure DevOps Git credentials of enabled namespaces' principals valid."""

    def __init__(
        self,
        client: GitCredentialsClient,
        tenants: Callable[[], TenantsSettings],
        metrics: Metrics,
        *,
        clock: Clock = time.time,
        wall: Clock = time.time,
        max_principals: int = MAX_PRINCIPALS,
    ) -> None:
        self._client = client
        self._tenants = tenants
        self._metrics = metrics
        self._clock = clock
        # The token endpoint stamps expiry with wall time; only the lifetime crosses over
        # to ``clock`` (which tests may shift).
        self._wall = wall
        self._held: TtlCache[str, Held] = TtlCache(
            max_principals, clock=clock, name="git-credentials"
        )
        # The identities written for lately, by principal, with the namespaces that asked
        # (several share the gateway's default identity): what the background refresher
        # keeps fresh while runs of one of them are active.
        self._known: OrderedDict[str, tuple[ResolvedIdentity, frozenset[str]]] = OrderedDict()
        self._max = max_principals

    def enabled(self, namespace: str) -> bool:
        return self._tenants().git_credentials(namespace) == "entra"

    async def before_submit(self, run: RunRecord, identity: ResolvedIdentity) -> None:
        """The submitter's hook: acts only for an enabled namespace's Azure DevOps run."""
        if self.enabled(run.namespace) and policy.needs_azure_devops(run.spec):
            await self.ensure(run.namespace, identity, trigger="submit")

    def known(self) -> list[tuple[ResolvedIdentity, frozenset[str]]]:
        """Every principal written for lately: its identity and the namespaces that asked."""
        return list(self._known.values())

    async def ensure(self, namespace: str, identity: ResolvedIdentity, *, trigger: str) -> Held:
        """The principal's credential, valid for at least its refresh-ahead window."""
        credential = entra_credential(namespace, identity)
        key = principal_key(identity)
        _, asked = self._known.get(key, (identity, frozenset()))
        self._known[key] = (identity, asked | {namespace})
        self._known.move_to_end(key)
        while len(self._known) > self._max:
            self._known.popitem(last=False)

        async def write() -> tuple[Held, float]:
            return await self._write(namespace, identity, credential, trigger)

        return await self._held.get(key, write)

    async def _write(
        self,
        namespace: str,
        identity: ResolvedIdentity,
        credential: EntraResourceTokens,
        trigger: str,
    ) -> tuple[Held, float]:
        try:
            token = await devops_token(namespace, credential)
            lifetime = max((token.seconds_left(self._wall()) or 0.0), 0.0)
            credential_id, action = await self._store(namespace, identity, token.value)
        except GitCredentialError as exc:
            self._metrics.observe_git_credential(namespace, trigger, "failed")
            log.warning(
                "git_credential_refresh_failed",
                namespace=namespace,
                trigger=trigger,
                transient=exc.transient,
                error=exc.message,
            )
            raise
        valid_until = self._clock() + lifetime
        self._metrics.observe_git_credential(namespace, trigger, action, valid_until=valid_until)
        log.info(
            "git_credential_refreshed",
            namespace=namespace,
            trigger=trigger,
            action=action,
            credential_id=credential_id,
            valid_for_seconds=round(lifetime),
        )
        keep = lifetime - policy.refresh_ahead(lifetime)
        return Held(credential_id, valid_until), keep

    async def _store(
        self, namespace: str, identity: ResolvedIdentity, token: str
    ) -> tuple[int, str]:
        """Update the principal's azureDevOpsServices credential, or create it; (id, action)."""
        ws, cred = identity.workspace, identity.credential
        username = _username(identity)
        try:
            found = await self._find(identity)
            if found is None:
                created = await self._create(identity, username, token)
                if created is not None:
                    return created, "created"
                # Created meanwhile (another replica): update that one instead.
                found = await self._find(identity)
                if found is None:
                    raise DatabricksError(
                        "Databricks refused to create an azureDevOpsServices credential as "
                        "one exists, yet lists none"
                    )
            await self._client.update(
                ws, cred, found, git_provider=AZURE_DEVOPS, git_username=username, token=token
            )
            return found, "updated"
        except DatabricksError as exc:
            raise _refused(namespace, exc) from exc

    async def _create(self, identity: ResolvedIdentity, username: str, token: str) -> int | None:
        """The new credential's id; None when Databricks says the principal has one."""
        try:
            created = await self._client.create(
                identity.workspace,
                identity.credential,
                git_provider=AZURE_DEVOPS,
                git_username=username,
                token=token,
            )
        except DatabricksError as exc:
            if already_exists(exc):
                return None
            raise
        return created.credential_id

    async def _find(self, identity: ResolvedIdentity) -> int | None:
        listed = await self._client.list(identity.workspace, identity.credential)
        return next(
            (c.credential_id for c in listed if same_provider(c.git_provider, AZURE_DEVOPS)),
            None,
        )


def entra_credential(namespace: str, identity: ResolvedIdentity) -> EntraResourceTokens:
    """The identity's credential as one that can ask Entra; the 422 when it is not."""
    credential = identity.credential
    if not policy.can_keep(identity.kind) or not isinstance(credential, EntraResourceTokens):
        raise GitCredentialError(
            policy.not_azure_message(namespace, identity.kind, identity.origin),
            namespace=namespace,
            source=identity.origin,
            transient=False,
        )
    return credential


async def devops_token(namespace: str, credential: EntraResourceTokens) -> AccessToken:
    """A new Entra token for Azure DevOps, asked with the credential's own identity; the
    refusal or outage, with its cause, as a ``GitCredentialError``."""
    try:
        token = await credential.entra_resource_token(policy.AZURE_DEVOPS_SCOPE)
    except TokenEndpointError as exc:
        fix = (
            "try again later"
            if exc.transient
            else "grant the service principal access to Azure DevOps (add it to the "
            "organization) or check its Entra credential"
        )
        raise GitCredentialError(
            f"namespace '{namespace}': Entra ID gave no token for Azure DevOps "
            f"({policy.AZURE_DEVOPS_RESOURCE}): {exc.message}; {fix}",
            namespace=namespace,
            source=SOURCE,
            transient=exc.transient,
            retry_after=exc.retry_after,
        ) from exc
    except IdentityError as exc:
        raise GitCredentialError(
            f"namespace '{namespace}': the Entra identity could not ask for an Azure "
            f"DevOps token: {exc.message}",
            namespace=namespace,
            source=SOURCE,
            transient=exc.status >= 500,
        ) from exc
    remember(token.value)
    return token


def _username(identity: ResolvedIdentity) -> str:
    # Databricks names a service principal by its application id (run_as, ACLs); Azure
    # DevOps authenticates by the token alone, so this is what the credential shows.
    principal = identity.principal
    if principal is not None and principal.client_id:
        return principal.client_id
    return identity.key


def _refused(namespace: str, exc: DatabricksError) -> GitCredentialError:
    fix = (
        "it may heal by itself; the run is submitted once it does"
        if exc.transient
        else "let the service principal use Git credentials in the workspace (it must be "
        "a workspace user with workspace access), or remove a credential it cannot update"
    )
    return GitCredentialError(
        f"namespace '{namespace}': the Databricks Git Credentials API refused to store the "
        f"Azure DevOps token: {exc.message}; {fix}",
        namespace=namespace,
        source=SOURCE,
        transient=exc.transient,
        retry_after=exc.retry_after,
    )
