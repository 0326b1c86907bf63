"""Why a namespace gets the identity it gets: each rule of ``plans`` with what it found.

Read-only, for the tenant doctor (``gateway.doctor``). The decision itself is never made
here: ``NamespaceResolver.explain`` hands in its own ``_plan`` (uncached), so what is reported
as chosen or refused is what the resolver does. This module only reads what each rule looks at
(the tenant policy, the labelled ServiceAccounts, the well-known Secrets, the default
identity) and says, rule by rule, why the ones before the deciding rule did not match.

Secret values are never kept: a Secret read here is reduced to its key names at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from gateway.databricks.oauth import mask_client_id
from gateway.errors import IdentityNotConfigured, LakegateError
from gateway.identity import plans
from gateway.identity.builders import Kube
from gateway.identity.plans import Account
from gateway.identity.strategy import Plan
from gateway.kube import KubeNotFound
from gateway.settings import Settings
from gateway.settings.tenants import TenantRefusal, identity_refusals

RuleOutcome = Literal["chosen", "no match", "refused", "not reached"]
POLICY_RULE = "tenant policy"
ACCOUNT_RULE = "ServiceAccount discovery"
SECRET_RULE = "Secrets"  # noqa: S105 - a rule's name, not a value
DEFAULT_RULE = "default identity"
RULES = (POLICY_RULE, ACCOUNT_RULE, SECRET_RULE, DEFAULT_RULE)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    outcome: RuleOutcome
    detail: str


@dataclass(frozen=True, slots=True)
class AccountSeen:
    """A labelled ServiceAccount as discovery sees it; the client id masked."""

    name: str
    labels: tuple[str, ...]
    client_id: str | None
    audience: str | None
    workspace: str | None


@dataclass(frozen=True, slots=True)
class SecretSeen:
    """One well-known Secret: its key names (None: it does not exist) or why it was unread."""

    name: str
    keys: tuple[str, ...] | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    namespace: str
    rules: tuple[Rule, ...]
    plan: Plan | None
    refusal: LakegateError | None
    policy_refusals: tuple[TenantRefusal, ...] = ()
    accounts: tuple[AccountSeen, ...] = ()
    secrets: tuple[SecretSeen, ...] = ()

    @property
    def decided_by(self) -> str:
        """The rule that chose or refused; the reads and the decision are not one atomic
        view, so a change in between may leave none (then: the resolver)."""
        decided = (r.name for r in self.rules if r.outcome in ("chosen", "refused"))
        return next(decided, "the resolver")


@dataclass(frozen=True, slots=True)
class Sources:
    """What the rules read: the resolver's settings, environment and Kubernetes views."""

    settings: Settings
    environ: Mapping[str, str]
    discovers: bool
    default: Plan | None
    accounts: Callable[[str], Awaitable[Sequence[Account]]] | None
    kube: Kube | None


async def explain(
    namespace: str, sources: Sources, decide: Callable[[], Awaitable[Plan]]
) -> Explanation:
    """Every rule with what it found; ``decide`` is the resolver's own decision."""
    plan: Plan | None = None
    refusal: LakegateError | None = None
    try:
        plan = await decide()
    except LakegateError as exc:
        refusal = exc
    policy = sources.settings.tenants.policy(namespace)
    identity = policy.identity if policy else None
    # The token file check touches the disk: off the loop, as the resolver does it.
    found = (
        await asyncio.to_thread(identity_refusals, namespace, identity, sources.environ)
        if identity
        else []
    )
    accounts, listing_error = await _accounts(namespace, sources)
    secrets = await _secrets(namespace, sources) if sources.discovers else ()
    facts = _Facts(namespace, sources, accounts, listing_error, secrets, plan, refusal)
    return Explanation(
        namespace,
        tuple(facts.rules()),
        plan,
        refusal,
        tuple(found),
        tuple(_seen(a) for a in accounts),
        secrets,
    )


async def _accounts(namespace: str, sources: Sources) -> tuple[Sequence[Account], str | None]:
    if not sources.discovers or sources.accounts is None:
        return (), None
    try:
        listed = await sources.accounts(namespace)
    except LakegateError as exc:
        return (), exc.message
    return [a for a in listed if plans.is_enabled(a)], None


async def _secrets(namespace: str, sources: Sources) -> tuple[SecretSeen, ...]:
    assert sources.kube is not None
    seen = []
    for name in sources.settings.identity.secret_names:
        try:
            data = await sources.kube.read_secret(namespace, name)
        except KubeNotFound:
            seen.append(SecretSeen(name, None))
        except LakegateError as exc:
            seen.append(SecretSeen(name, None, exc.message))
        else:
            seen.append(SecretSeen(name, tuple(sorted(data))))
    return tuple(seen)


def _seen(account: Account) -> AccountSeen:
    client_id = plans.client_id_of(account)
    return AccountSeen(
        account.name,
        tuple(f"{k}={v}" for k, v in sorted(account.labels.items()) if k in plans.ENABLED_LABELS),
        mask_client_id(client_id) if client_id else None,
        _first(account.annotations, plans.AUDIENCE_ANNOTATIONS),
        account.annotations.get(plans.WORKSPACE_ANNOTATIONS[0]),
    )


def _first(values: Mapping[str, str], names: Sequence[str]) -> str | None:
    return next((values[n].strip() for n in names if values.get(n, "").strip()), None)


@dataclass(frozen=True, slots=True)
class _Facts:
    namespace: str
    sources: Sources
    labelled: Sequence[Account]
    listing_error: str | None
    secrets: tuple[SecretSeen, ...]
    plan: Plan | None
    refusal: LakegateError | None

    def rules(self) -> list[Rule]:
        """Each rule in order: those before the deciding one say why they did not match."""
        checks = (self._policy, self._account, self._secret, self._default)
        out: list[Rule] = []
        decider: str | None = None
        for name, check in zip(RULES, checks, strict=True):
            if decider is not None:
                out.append(Rule(name, "not reached", f"the {decider} rule decided"))
                continue
            decides, detail = check()
            out.append(Rule(name, self._decided() if decides else "no match", detail))
            decider = name if decides else None
        return out

    def _decided(self) -> RuleOutcome:
        return "chosen" if self.plan is not None else "refused"

    def _policy(self) -> tuple[bool, str]:
        policy = self.sources.settings.tenants.policy(self.namespace)
        if policy is None:
            return False, f"the tenants file has no entry for '{self.namespace}'"
        if policy.identity is None:
            return False, f"tenants.namespaces.{self.namespace} names no identity"
        return True, f"tenants.namespaces.{self.namespace}.identity is type {policy.identity.type}"

    def _account(self) -> tuple[bool, str]:
        if not self.sources.discovers:
            return False, "Kubernetes discovery is off (kubernetes.mode off or discovery disabled)"
        if self.listing_error is not None:
            return True, f"cannot list the namespace's ServiceAccounts: {self.listing_error}"
        if not self.labelled:
            return False, f"no ServiceAccount in '{self.namespace}' is labelled {_label()}"
        named = [a for a in self.labelled if plans.client_id_of(a)]
        names = ", ".join(f"'{a.name}'" for a in self.labelled)
        if named:
            return True, f"ServiceAccount {names} is labelled {_label()}"
        if self._secret_found() is None:
            return True, (
                f"ServiceAccount {names} is labelled {_label()} but has no "
                f"{plans.CLIENT_ID_ANNOTATIONS[0]} annotation, and no Secret follows it"
            )
        return False, (
            f"ServiceAccount {names} is labelled but has no {plans.CLIENT_ID_ANNOTATIONS[0]} "
            "annotation (or a blank one), so it names no service principal; Secrets come next"
        )

    def _secret_found(self) -> SecretSeen | None:
        return next((s for s in self.secrets if s.keys is not None or s.error), None)

    def _secret(self) -> tuple[bool, str]:
        if not self.sources.discovers:
            return False, "Kubernetes discovery is off: no Secret is looked for"
        found = self._secret_found()
        absent = ", ".join(f"'{s.name}'" for s in self.secrets if s.keys is None and not s.error)
        if found is None:
            return False, f"no Secret {absent or '(none configured)'} in '{self.namespace}'"
        if found.error is not None:
            return True, f"Secret '{found.name}' cannot be read: {found.error}"
        return True, f"Secret '{found.name}' holds keys {', '.join(found.keys or ()) or '(none)'}"

    def _default_serves(self) -> bool:
        opted = self.sources.settings.identity.default_for_unconfigured
        return self.sources.default is not None and opted

    def _default(self) -> tuple[bool, str]:
        if self._default_serves():
            return True, "identity.default_for_unconfigured is on: the gateway's own identity"
        if isinstance(self.refusal, IdentityNotConfigured):
            why = (
                "the gateway has no identity of its own"
                if self.sources.default is None
                else "identity.default_for_unconfigured is off"
            )
            return True, f"{why}, and lakegate does not lend another namespace's"
        return False, "the gateway's own identity serves no unconfigured namespace"


def _label() -> str:
    return plans.ENABLED_SELECTORS[0]
