"""Which Databricks identity a namespace runs as: the precedence of ``plans``, with I/O.

Resolutions are kept for ``identity.resolution_ttl_seconds`` and made once however many
requests wait (single flight per namespace and override, in a ``TtlCache``). A change to one
of the namespace's ServiceAccounts, or a refused token, forgets the namespace's resolutions, so
the next request re-reads Kubernetes: a rotated Secret or a new label takes effect without a
restart.

Failures close: a Secret that cannot be read (RBAC, API down) refuses the namespace; it never
falls through to another identity.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from gateway.databricks.auth import TokenProvider
from gateway.databricks.jobs import Workspace
from gateway.errors import (
    ConfigError,
    CredentialUnavailable,
    IdentityForbidden,
    IdentityMisconfigured,
    IdentityNotConfigured,
    InvalidRequest,
    LakegateError,
)
from gateway.identity import kinds, plans
from gateway.identity.builders import Builder, Kube
from gateway.identity.default import default_plan
from gateway.identity.explain import Explanation, Sources, explain
from gateway.identity.plans import Account
from gateway.identity.principal import Principal, of_plan
from gateway.identity.strategy import POLICY_ORIGIN, Plan
from gateway.kube import KubeForbidden, KubeNotFound
from gateway.logs import get_logger
from gateway.settings import OBJECT_NAME_RE, IdentitySettings, Settings
from gateway.settings.tenants import TenantRefusal, identity_refusals, tenant_refusals
from gateway.singleflight import TtlCache

log = get_logger(__name__)

# Far more than a cluster's namespaces (and their overrides): the bound only stops a flood
# of distinct overrides from growing the cache without end.
MAX_RESOLUTIONS = 100_000


@dataclass(frozen=True, slots=True)
class IdentityOverride:
    """A request's choice of another ServiceAccount or Secret in its own namespace."""

    service_account: str | None = None
    secret: str | None = None
    # Following a run already submitted (polling, cancelling) under this ServiceAccount: it
    # may have lost its label since; withdrawing the label stops new work, not old runs.
    following: bool = False

    def __post_init__(self) -> None:
        if (self.service_account is None) == (self.secret is None):
            raise InvalidRequest(
                "identity names exactly one of service_account or secret", field="identity"
            )
        name = self.service_account or self.secret or ""
        if not OBJECT_NAME_RE.match(name):
            raise InvalidRequest(f"'{name}' is not a Kubernetes object name", field="identity")


@dataclass(frozen=True, slots=True)
class ResolvedIdentity:
    """A namespace's workspace and credential; ``key`` names the identity without a secret."""

    namespace: str
    workspace_name: str
    workspace: Workspace
    credential: TokenProvider
    key: str
    kind: str
    origin: str
    # The ServiceAccount or Secret this identity came from ({} for the tenant policy or the
    # default): a run keeps it, so it is followed by the principal that submitted it even
    # after the namespace's identity changes.
    pin: Mapping[str, str] = field(default_factory=dict)
    # Whom Databricks sees: a run records it, and is followed only by the same principal.
    principal: Principal | None = None


class IdentityResolver(Protocol):
    async def resolve(
        self, namespace: str, override: IdentityOverride | None = None
    ) -> ResolvedIdentity: ...


@runtime_checkable
class HoldsResolutions(Protocol):
    """A resolver that keeps its resolutions and can say which it holds fresh."""

    def cached(
        self, namespace: str, override: IdentityOverride | None = None
    ) -> ResolvedIdentity | None: ...


class AccountIndex(Protocol):
    """ServiceAccounts by namespace (``gateway.kube.ServiceAccountInformer``)."""

    async def get(self, namespace: str, name: str) -> Account | None: ...
    async def in_namespace(self, namespace: str) -> Sequence[Account]: ...


ResolutionKey = tuple[str, IdentityOverride | None]


def _pin_key(pin: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(pin.items()))


class NamespaceResolver:
    def __init__(
        self,
        settings: Settings,
        *,
        builder: Builder,
        environ: Mapping[str, str],
        accounts: AccountIndex | None = None,
        kube: Kube | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._builder = builder
        self._accounts = accounts
        self._kube = kube
        self._environ = environ
        self._default = default_plan(settings, environ)
        # A resolution that forget() detaches still answers its waiters but is not kept:
        # it read Kubernetes before the change.
        self._resolutions: TtlCache[ResolutionKey, ResolvedIdentity] = TtlCache(
            MAX_RESOLUTIONS, clock=clock, name="identity-resolution"
        )
        # The last plan each ServiceAccount or Secret gave, to follow runs it submitted after
        # the informer stopped listing it (its label was removed).
        self._followable: dict[tuple[str, str], Plan] = {}
        self._check_policies_need_nothing_missing()

    @property
    def discovers(self) -> bool:
        return self._kube is not None and self._settings.identity.discover_from_kubernetes

    async def resolve(
        self, namespace: str, override: IdentityOverride | None = None
    ) -> ResolvedIdentity:
        ttl = self._settings.identity.resolution_ttl_seconds

        async def load() -> tuple[ResolvedIdentity, float]:
            return await self._resolve(namespace, override), ttl

        return await self._resolutions.get((namespace, override), load)

    def cached(
        self, namespace: str, override: IdentityOverride | None = None
    ) -> ResolvedIdentity | None:
        """What ``resolve`` would answer without asking anyone; None if it would have to."""
        return self._resolutions.peek((namespace, override))

    def forget(self, namespace: str) -> None:
        """Drop the namespace's resolutions; the next request resolves it afresh."""
        self._resolutions.forget_where(lambda key: key[0] == namespace)

    def flush(self, namespaces: Collection[str] | None) -> None:
        """Forget the resolutions of ``namespaces`` (None: of every namespace), e.g. after
        a tenant policy reload changed their identity; the next request resolves anew."""
        if namespaces is None:
            self._resolutions.clear()
            return
        names = frozenset(namespaces)
        self._resolutions.forget_where(lambda key: key[0] in names)

    def on_account_change(self, change: object) -> None:
        """Informer listener: any change to a namespace's ServiceAccounts may change its plan."""
        account = getattr(change, "account", None)
        namespace = getattr(account, "namespace", None)
        if isinstance(namespace, str):
            self.forget(namespace)

    async def aclose(self) -> None:
        """Cancel the resolutions in flight (their waiters see it) and drop those kept."""
        await self._resolutions.aclose()

    # --- resolution -------------------------------------------------------------------------

    async def _resolve(self, namespace: str, override: IdentityOverride | None) -> ResolvedIdentity:
        plan = await self._plan(namespace, override)
        kind = kinds.of(plan)
        pin = kind.pin(plan)
        if pin:
            self._followable[(namespace, _pin_key(pin))] = plan
        credential = self._builder.credential(plan, namespace, lambda: self.forget(namespace))
        listed = self._settings.workspaces[plan.workspace.name]
        log.info(
            "identity_resolved",
            namespace=namespace,
            kind=plan.kind,
            origin=plan.origin,
            workspace=plan.workspace.name,
        )
        return ResolvedIdentity(
            namespace=namespace,
            workspace_name=plan.workspace.name,
            workspace=Workspace.from_settings(listed),
            credential=credential,
            key=f"{kind.key(plan)}@{plan.workspace.host}",
            kind=plan.kind,
            origin=plan.origin,
            pin=pin,
            principal=of_plan(plan),
        )

    async def _plan(self, namespace: str, override: IdentityOverride | None) -> Plan:
        policy = self._settings.tenants.policy(namespace)
        pinned = policy.identity if policy else None
        if pinned is not None and override is None:
            await self._refuse_if_unusable(namespace, pinned)
            return plans.from_policy(
                self._settings, namespace, pinned, self._environ, self._default
            )
        if pinned is not None:
            raise InvalidRequest(
                f"namespace '{namespace}' has its identity set by the operator; a request "
                "cannot choose another",
                field="identity",
            )
        if override is not None:
            return await self._overridden(namespace, override)
        if self.discovers:
            found = await self._discover(namespace)
            if found is not None:
                return found
        if self._default is not None and self._settings.identity.default_for_unconfigured:
            return self._default
        raise IdentityNotConfigured(
            plans.not_configured_message(
                namespace,
                kubernetes=self.discovers,
                secret_names=self._settings.identity.secret_names,
            ),
            namespace=namespace,
        )

    async def _overridden(self, namespace: str, override: IdentityOverride) -> Plan:
        if not self.discovers:
            raise InvalidRequest(
                "choosing a ServiceAccount or Secret needs lakegate's Kubernetes discovery, "
                "which is off",
                field="identity",
            )
        if override.service_account is not None:
            assert self._accounts is not None
            account = await self._accounts.get(namespace, override.service_account)
            remembered = self._followable.get(
                (namespace, _pin_key({"service_account": override.service_account}))
            )
            if override.following and remembered is not None and account is None:
                return remembered
            if account is None or not (override.following or plans.is_enabled(account)):
                raise IdentityMisconfigured(
                    f"ServiceAccount '{override.service_account}' in namespace '{namespace}' "
                    f"does not exist or is not labelled {' or '.join(plans.ENABLED_SELECTORS)}",
                    namespace=namespace,
                    source="request",
                )
            return plans.from_service_account(self._settings, account)
        assert override.secret is not None
        data = await self._secret_data(namespace, override.secret, offered=not override.following)
        if data is None:
            raise IdentityMisconfigured(
                f"Secret '{override.secret}' does not exist in namespace '{namespace}'",
                namespace=namespace,
                source="request",
            )
        return plans.from_secret(self._settings, namespace, override.secret, data)

    async def _discover(self, namespace: str) -> Plan | None:
        assert self._accounts is not None
        try:
            accounts = await self._accounts.in_namespace(namespace)
        except LakegateError as exc:
            raise CredentialUnavailable(
                f"namespace '{namespace}': cannot list its ServiceAccounts: {exc.message}",
                namespace=namespace,
                source="ServiceAccounts",
            ) from exc
        labelled = [a for a in accounts if plans.is_enabled(a)]
        # A labelled ServiceAccount without a client id is no identity (as in Flyte): the
        # namespace's Secrets are looked at next.
        account = plans.choose_account(namespace, [a for a in labelled if plans.client_id_of(a)])
        if account is not None:
            return plans.from_service_account(self._settings, account)
        for name in self._settings.identity.secret_names:
            data = await self._secret_data(namespace, name)
            if data is not None:
                return plans.from_secret(self._settings, namespace, name, data)
        if labelled:
            # Meant as the namespace's identity: say what it lacks rather than lend another.
            raise plans.missing_client_id(namespace, labelled)
        return None

    async def _secret_data(
        self, namespace: str, name: str, *, offered: bool = False
    ) -> Mapping[str, bytes] | None:
        """The Secret's data; None only when it does not exist. Any other failure refuses,
        and so does, when ``offered``, a Secret the namespace did not label for lakegate."""
        assert self._kube is not None
        try:
            data = await self._kube.read_secret(namespace, name)
        except KubeNotFound:
            return None
        except KubeForbidden as exc:
            raise IdentityForbidden(
                f"namespace '{namespace}': lakegate may not read Secret '{name}' (RBAC): "
                f"{exc.message}",
                namespace=namespace,
                source=f"Secret '{name}'",
            ) from exc
        except LakegateError as exc:
            raise CredentialUnavailable(
                f"namespace '{namespace}': cannot read Secret '{name}': {exc.message}",
                namespace=namespace,
                source=f"Secret '{name}'",
            ) from exc
        if offered and not plans.is_offered(getattr(data, "labels", {})):
            raise InvalidRequest(
                f"namespace '{namespace}': Secret '{name}' is not offered to lakegate; a "
                f"request may name only a Secret labelled {plans.ENABLED_SELECTORS[0]}",
                field="identity.secret",
            )
        return data

    async def explain(self, namespace: str) -> Explanation:
        """Read-only, for the tenant doctor: each rule with what it found, around the plan
        this resolver makes now (uncached, so the answer is today's, not a cached one's)."""
        sources = Sources(
            self._settings,
            self._environ,
            self.discovers,
            self._default,
            self._accounts.in_namespace if self._accounts is not None else None,
            self._kube,
        )
        return await explain(namespace, sources, lambda: self._plan(namespace, None))

    @property
    def settings(self) -> Settings:
        return self._settings

    async def refusals(self) -> list[TenantRefusal]:
        """The configured tenants refused now (an unset variable, an unreadable token file)."""
        return await asyncio.to_thread(tenant_refusals, self._settings.tenants, self._environ)

    async def _refuse_if_unusable(self, namespace: str, identity: IdentitySettings) -> None:
        # Per resolution, not only at start-up: a reloaded tenants file is held to it too. The
        # file check touches the disk, so off the loop; resolutions are cached, so this is rare.
        found = await asyncio.to_thread(identity_refusals, namespace, identity, self._environ)
        if found:
            raise IdentityMisconfigured(
                "; ".join(r.message() for r in found), namespace=namespace, source=POLICY_ORIGIN
            )

    def _check_policies_need_nothing_missing(self) -> None:
        """Refuse at start-up every tenant policy that cannot work, all of them at once. A
        tenant whose variable or file is missing is refused alone; the gateway starts."""
        problems = []
        # Variables only: a token file is read per fetch, and the constructor runs on the loop.
        found = tenant_refusals(self._settings.tenants, self._environ, files=False)
        refused = {r.namespace for r in found}
        for namespace in sorted(refused):
            log.warning("tenant_refused", namespace=namespace)
        for namespace, policy in self._settings.tenants.namespaces.items():
            if policy.identity is not None and namespace not in refused:
                where = f"tenants.namespaces.{namespace}.identity"
                problems += [f"{where}: {p}" for p in self._policy_problems(policy.identity)]
        if problems:
            raise ConfigError(problems)

    def _policy_problems(self, identity: IdentitySettings) -> list[str]:
        kind = kinds.for_settings(identity)
        if kind is not None:
            return kind.problems(identity, self._environ, kubernetes=self._kube is not None)
        # ``type: default``: the gateway's own identity, which its environment must hold.
        if self._default is not None:
            return []
        return [
            "type default, but the gateway has no DATABRICKS_HOST and credential in its environment"
        ]
