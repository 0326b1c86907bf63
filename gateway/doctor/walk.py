"""What one walk of a namespace's path carries from step to step.

A step reads what earlier steps found (the explanation, the plan, a minted token, the access
token) and leaves what later steps need. Tokens live here in memory for the walk only; no step
puts one in its ``Step`` (``gateway.doctor.model``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.databricks.auth import AccessToken
from gateway.databricks.git_credentials import GitCredentialsClient
from gateway.databricks.jobs import JobsClient
from gateway.databricks.oauth import TokenClient
from gateway.doctor.model import Step
from gateway.identity.builders import Builder, Kube
from gateway.identity.explain import Explanation
from gateway.identity.strategy import Plan
from gateway.settings import Settings


class WalkTools(Builder):
    """The builder's tools with the walk's own cache; a mint already made is reused, so a
    ServiceAccount's token is requested once per walk (its own step) and then exchanged."""

    minted: AccessToken | None = None

    async def mint(
        self, namespace: str, service_account: str, audiences: list[str], seconds: int
    ) -> AccessToken:
        if self.minted is not None:
            return self.minted
        return await super().mint(namespace, service_account, audiences, seconds)


class QuotaSource(Protocol):
    """The namespace's quota as ``GET .../quota`` reports it (``gateway.runs.quota``)."""

    async def report(self, namespace: str) -> dict[str, Any]: ...


@dataclass(slots=True)
class Walk:
    namespace: str
    settings: Settings
    explanation: Explanation
    tools: WalkTools
    jobs: JobsClient
    git_credentials: GitCredentialsClient
    kube: Kube | None
    quota: QuotaSource | None
    steps: list[Step] = field(default_factory=list)
    # The claims of the subject token federation presented (iss, sub, aud, exp): no token.
    subject_claims: Mapping[str, Any] | None = None
    token: AccessToken | None = None

    @property
    def tokens(self) -> TokenClient:
        return self.tools.tokens

    @property
    def plan(self) -> Plan | None:
        return self.explanation.plan

    def blocked(self) -> Step | None:
        """The first failed step of the identity chain, after which its steps are skipped."""
        return next((s for s in self.steps if s.outcome == "failed"), None)


StepFunction = Callable[[Walk], Awaitable[Step]]
Steps = Sequence[StepFunction]
