"""The Git Credentials API (reference section 7), and what a run's checkout makes of it.

    GET    /api/2.0/git-credentials                  {"credentials": [...]} (omitted when none)
    POST   /api/2.0/git-credentials                  {credential_id, git_provider, git_username}
    GET    /api/2.0/git-credentials/{credential_id}
    PATCH  /api/2.0/git-credentials/{credential_id}  git_provider required; {} back
    DELETE /api/2.0/git-credentials/{credential_id}  {} back
    GET    /emulator/git-credentials                 every credential, token described, not shown

(served by ``git_credentials_api``; this module is the state and the checkout rule).

Credentials belong to the calling principal (the bearer token's); another principal's id is
unknown to a caller. As Databricks enforces for service principals, a principal has one
credential per provider: a second create answers 409 ``RESOURCE_ALREADY_EXISTS`` "A Git
credential already exists for provider azureDevOpsServices. Only one credential per provider
is allowed for service principals." (the message seen in terraform-provider-databricks
#4871; the status is the one the provider checks since #4873). The token is write-only:
never returned, never logged.

A run checks out its Azure DevOps repository (``git_source.git_provider:
azureDevOpsServices``, top level or a task's) when it leaves the queue (``checkout_ok``,
asked by the run registry at that instant): it needs the credential in force then to hold an
Entra ID token for Azure DevOps from the emulated Entra, not expired on the emulator's clock.
What each write stored is kept with its time, so a run admitted late (queued, observed
later) is judged by the credential of its own instant. Without it the run ends
INTERNAL_ERROR / REPOSITORY_CHECKOUT_FAILED when PENDING ends, as Databricks does.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.emulator.clock import Clock
from gateway.emulator.databricks.entra_credentials import AZURE_DEVOPS_RESOURCE
from gateway.emulator.databricks.identity import Principal
from gateway.emulator.databricks.validation import SubmitSpec
from gateway.logs import get_logger

log = get_logger(__name__)

PATH = "/api/2.0/git-credentials"
AZURE_DEVOPS = "azureDevOpsServices"
PROVIDERS = (
    "gitHub",
    "gitHubEnterprise",
    "bitbucketCloud",
    "bitbucketServer",
    AZURE_DEVOPS,
    "gitLab",
    "gitLabEnterpriseEdition",
    "awsCodeCommit",
)
_CANONICAL = {p.casefold(): p for p in PROVIDERS}
FIRST_CREDENTIAL_ID = 93488329053511


@dataclass(frozen=True)
class TokenFacts:
    """What the emulated Entra says of a stored token (None fields: not an Entra token)."""

    resource: str | None
    expires_ms: int | None


Inspect = Callable[[str], TokenFacts]


def _not_entra(_token: str) -> TokenFacts:
    return TokenFacts(None, None)


@dataclass
class Version:
    """What a credential held from ``since_ms`` on; ``token`` None: deleted or no token."""

    since_ms: int
    token: TokenFacts | None


@dataclass
class StoredCredential:
    credential_id: int
    git_provider: str
    git_username: str | None

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "credential_id": self.credential_id,
            "git_provider": self.git_provider,
        }
        if self.git_username is not None:
            out["git_username"] = self.git_username
        return out


@dataclass
class GitCredentialStore:
    """Every principal's Git credentials, and what each held when."""

    clock: Clock
    inspect: Inspect = _not_entra
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(FIRST_CREDENTIAL_ID))
    by_principal: dict[str, dict[int, StoredCredential]] = field(default_factory=dict)
    # (principal, provider) -> versions, oldest first.
    history: dict[tuple[str, str], list[Version]] = field(default_factory=dict)
    ops: Counter[str] = field(default_factory=Counter)

    def of(self, principal: str) -> dict[int, StoredCredential]:
        return self.by_principal.setdefault(principal, {})

    def create(
        self, principal: str, provider: str, username: str | None, token: str | None
    ) -> StoredCredential | None:
        """The new credential; None when the principal has one for ``provider``."""
        mine = self.of(principal)
        if any(c.git_provider == provider for c in mine.values()):
            self.ops["create_refused"] += 1
            return None
        credential = StoredCredential(next(self._ids), provider, username)
        mine[credential.credential_id] = credential
        self._record(principal, provider, token)
        self.ops["create"] += 1
        return credential

    def update(
        self,
        principal: str,
        credential: StoredCredential,
        provider: str,
        username: str | None,
        token: str | None,
    ) -> bool:
        """Apply a PATCH; False when another credential of the principal has ``provider``."""
        others = (c for c in self.of(principal).values() if c is not credential)
        if any(c.git_provider == provider for c in others):
            return False
        if provider != credential.git_provider:
            self._record(principal, credential.git_provider, None)
            credential.git_provider = provider
        if username is not None:
            credential.git_username = username
        if token is not None:
            self._record(principal, provider, token)
        self.ops["update"] += 1
        return True

    def delete(self, principal: str, credential: StoredCredential) -> None:
        del self.of(principal)[credential.credential_id]
        self._record(principal, credential.git_provider, None)
        self.ops["delete"] += 1

    def _record(self, principal: str, provider: str, token: str | None) -> None:
        facts = None if token is None else self.inspect(token)
        versions = self.history.setdefault((principal, provider), [])
        versions.append(Version(self.clock.now_ms(), facts))

    def credential_at(self, principal: str, provider: str, at_ms: int) -> TokenFacts | None:
        """What the principal's credential for ``provider`` held at ``at_ms``."""
        held = None
        for version in self.history.get((principal, provider), []):
            if version.since_ms > at_ms:
                break
            held = version.token
        return held

    def checkout_ok(self, spec: SubmitSpec, principal: Principal, at_ms: int) -> bool:
        """Whether the run can clone its repository at ``at_ms`` (True: it needs none)."""
        if not needs_azure_devops(spec):
            return True
        why = _unusable(self.credential_at(principal.name, AZURE_DEVOPS, at_ms), at_ms)
        if why is not None:
            log.info("emulator_git_checkout_failed", principal=principal.name, reason=why)
        return why is None

    def summaries(self) -> list[dict[str, Any]]:
        """Every credential with what its token is (never the token), for tests and demos."""
        now = self.clock.now_ms()
        out = []
        for principal, credentials in self.by_principal.items():
            for credential in credentials.values():
                facts = self.credential_at(principal, credential.git_provider, now)
                out.append(
                    {
                        "principal": principal,
                        **credential.view(),
                        "token_resource": facts.resource if facts else None,
                        "token_expires_ms": facts.expires_ms if facts else None,
                        "token_valid": bool(
                            facts and facts.expires_ms is not None and facts.expires_ms > now
                        ),
                    }
                )
        return out


def _unusable(held: TokenFacts | None, at_ms: int) -> str | None:
    """Why Azure DevOps would refuse the credential at ``at_ms``; None when it accepts it."""
    if held is None:
        return "missing"
    if held.resource != AZURE_DEVOPS_RESOURCE or held.expires_ms is None:
        return "not_an_azure_devops_token"
    return "expired" if held.expires_ms <= at_ms else None


def _sources(spec: SubmitSpec) -> list[Mapping[str, Any]]:
    found = [spec.body.get("git_source"), *(t.body.get("git_source") for t in spec.tasks)]
    return [s for s in found if isinstance(s, Mapping)]


def needs_azure_devops(spec: SubmitSpec) -> bool:
    return any(
        isinstance(s.get("git_provider"), str)
        and s["git_provider"].casefold() == AZURE_DEVOPS.casefold()
        for s in _sources(spec)
    )


def canonical_provider(raw: str) -> str | None:
    """The provider as Databricks spells it; None when it is none of them (case-insensitive)."""
    return _CANONICAL.get(raw.strip().casefold())
