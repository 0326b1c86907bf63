"""What every identity kind is made of: the ``IdentityKind`` base, the ``Plan`` it makes, the
``Tools`` its fetch borrows, and the helpers the kinds in ``gateway.identity.kinds`` share.

A kind (an ``IdentityKind``) knows
- its settings model (``settings``, in ``gateway.settings.tenants``) and the ``Plan`` those
  settings make (``plan``); discovery turns a labelled ServiceAccount or a Secret into the
  same settings, so every plan of a kind is made in one place;
- what is wrong with such settings before any request is served (``problems``);
- what it reads from the gateway's own environment, named as the Databricks SDK names it
  (``auth_type``, ``from_environment``), for the default identity;
- its cache key (``key``, from a ``subject`` that names the identity without a secret) and
  its ``pin`` (the ServiceAccount or Secret that a run submitted under a discovered plan
  keeps);
- how it fetches a token (``fetch``), with the ``Tools`` the builder lends it. Secret values
  and token files are read by the fetch itself, so a rotated one is used from the next fetch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Generic, Protocol, TypeVar

from pydantic import SecretStr

from gateway.databricks.auth import AccessToken
from gateway.databricks.oauth import TokenClient
from gateway.errors import IdentityMisconfigured
from gateway.identity import sources
from gateway.identity.cache import Fetch, TokenCache
from gateway.identity.principal import client_subject
from gateway.settings import (
    IdentityOptions,
    SecretRef,
    Settings,
    resolve_secret,
)
from gateway.settings.base import Frozen

S = TypeVar("S", bound=Frozen)

POLICY_ORIGIN = "tenant policy"
NEEDS_KUBERNETES = (
    "needs the Kubernetes API (a Secret or ServiceAccount), but kubernetes.mode is off"
)


@dataclass(frozen=True, slots=True)
class WorkspaceRef:
    """An allow-listed workspace, by its name in the settings and its host."""

    name: str
    host: str


@dataclass(frozen=True, slots=True)
class Plan:
    """Which identity a namespace runs as, decided without I/O: everything a credential needs
    except secret values held in Kubernetes, which its fetch reads."""

    kind: str
    workspace: WorkspaceRef
    # What chose this identity, for errors and logs: "tenant policy", "ServiceAccount 'etl'".
    origin: str
    client_id: str | None = None
    secret_name: str | None = None
    service_account: str | None = None
    audience: str | None = None
    token_file: str | None = None
    # Where else the token file may be when ``token_file`` does not exist, tried in order.
    token_fallbacks: tuple[str, ...] = ()
    # (path, the setting that named it) for each token file, for refusals naming both.
    token_settings: tuple[tuple[str, str], ...] = ()
    tenant_id: str | None = None
    # OAuth scopes the identity asks of the workspace; None: identity.oauth_scopes.
    scopes: tuple[str, ...] | None = None
    # A value from the settings or the gateway's environment; never one read from Kubernetes.
    inline_secret: SecretStr | None = None
    # The gateway's default identity is one identity for every namespace that uses it.
    shared: bool = False
    # Found in the namespace (a labelled ServiceAccount, a Secret), not named by the operator.
    discovered: bool = False


class Tools(Protocol):
    """What a fetch may use (``gateway.identity.builders.Builder`` lends it)."""

    @property
    def tokens(self) -> TokenClient: ...
    @property
    def cache(self) -> TokenCache: ...
    @property
    def options(self) -> IdentityOptions: ...
    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]: ...
    async def mint(
        self, namespace: str, service_account: str, audiences: list[str], seconds: int
    ) -> AccessToken: ...


@dataclass(frozen=True, slots=True)
class PlanContext:
    """Where a plan is made: for which namespace and workspace, from what, and how shared."""

    settings: Settings
    namespace: str
    workspace: WorkspaceRef
    origin: str = POLICY_ORIGIN
    environ: Mapping[str, str] = field(default_factory=dict)
    shared: bool = False
    discovered: bool = False

    def secret(self, value: SecretStr | None, env: str | None) -> SecretStr | None:
        """A secret given inline or named by an environment variable; None if neither."""
        if value is None and env is None:
            return None
        return SecretStr(resolve_secret(value, env, self.environ))

    def plan(
        self,
        kind: str,
        *,
        client_id: str | None = None,
        secret_name: str | None = None,
        service_account: str | None = None,
        audience: str | None = None,
        token_file: str | None = None,
        tenant_id: str | None = None,
        inline_secret: SecretStr | None = None,
        scopes: tuple[str, ...] | None = None,
        token_fallbacks: tuple[str, ...] = (),
        token_settings: tuple[tuple[str, str], ...] = (),
    ) -> Plan:
        return Plan(
            kind,
            self.workspace,
            self.origin,
            client_id=client_id,
            secret_name=secret_name,
            service_account=service_account,
            audience=audience,
            token_file=token_file,
            token_fallbacks=token_fallbacks,
            token_settings=token_settings,
            tenant_id=tenant_id,
            inline_secret=inline_secret,
            scopes=scopes,
            shared=self.shared,
            discovered=self.discovered,
        )


@dataclass(frozen=True, slots=True)
class Environment:
    """The gateway's own environment variables, read as the Databricks SDK reads them."""

    variables: Mapping[str, str]

    def get(self, *names: str) -> str | None:
        """The first of ``names`` set to something other than blanks, stripped."""
        for name in names:
            value = self.variables.get(name, "").strip()
            if value:
                return value
        return None

    def every(self, *names: str) -> tuple[str, ...] | None:
        """Each of ``names``, stripped, when all are set; None when any is not."""
        values = tuple(self.get(name) or "" for name in names)
        return values if all(values) else None


class IdentityKind(ABC, Generic[S]):
    """One kind of identity: its settings, problems, environment, key, pin and fetch."""

    name: ClassVar[str]
    # How messages call it: "OAuth M2M".
    title: ClassVar[str]
    settings: type[S]
    # DATABRICKS_AUTH_TYPE of the kind as the gateway's own identity; None: not one of those.
    auth_type: ClassVar[str | None] = None
    # A namespace's Secret holding these keys is an identity of this kind.
    secret_keys: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def plan(self, identity: S, where: PlanContext) -> Plan: ...

    def problems(self, identity: S, environ: Mapping[str, str], *, kubernetes: bool) -> list[str]:
        """What stops these settings from ever working, found at start-up."""
        return []

    def from_environment(self, env: Environment) -> S | None:
        """The settings the gateway's environment describes; None when it holds no such one."""
        return None

    def in_secret(self, name: str) -> S:
        """The settings of this kind held whole in the namespace's Secret ``name``."""
        raise TypeError(f"{self.name} is never held in a Secret")

    @abstractmethod
    def subject(self, plan: Plan) -> str:
        """The plan's identity within its kind, without a secret: an account, a Secret..."""

    def key(self, plan: Plan) -> str:
        """Names the plan's identity without a secret (for grouping, caching and logs)."""
        return f"{self.name}:{self.subject(plan)}"

    def pin(self, plan: Plan) -> dict[str, str]:
        """The ServiceAccount or Secret a run submitted under ``plan`` is followed with; none
        for a plan from the tenant policy or the default (those are found again as they are)."""
        return {}

    @abstractmethod
    def fetch(self, plan: Plan, namespace: str, tools: Tools) -> Fetch: ...


# --- what the kinds share -------------------------------------------------------------------


def secret_name(secret: SecretRef | None) -> str | None:
    return secret.name if secret else None


def inline(plan: Plan) -> str | None:
    return None if plan.inline_secret is None else plan.inline_secret.get_secret_value()


def first(*subjects: str | None) -> str:
    """The first subject that is set; an identity given only inline is ``inline``."""
    return next((s for s in subjects if s), "inline")


def every(*subjects: str | None) -> str:
    """Every subject that is set, joined: a Secret and the client id it holds are both part
    of the identity, so a Secret edited to another client is another cache entry."""
    return "/".join(s for s in subjects if s) or "inline"


def client_of(plan: Plan) -> str | None:
    """The plan's client id as a key names it: masked (keys reach logs), yet unique."""
    return client_subject(plan.client_id) if plan.client_id else None


def secret_subject(plan: Plan) -> str | None:
    return f"secret/{plan.secret_name}" if plan.secret_name else None


def secret_pin(plan: Plan) -> dict[str, str]:
    return {"secret": plan.secret_name} if plan.discovered and plan.secret_name else {}


def secret_problems(
    environ: Mapping[str, str], kubernetes: bool, secret: SecretRef | None, env: str | None
) -> list[str]:
    """A secret-holding kind's problems: a Secret without Kubernetes, an unset variable."""
    found = []
    if secret is not None and not kubernetes:
        found.append(NEEDS_KUBERNETES)
    if env is not None and not environ.get(env):
        found.append(f"environment {env} is not set or empty")
    return found


def source_of(plan: Plan) -> str:
    return f"{plan.kind} ({plan.origin})"


def require(plan: Plan, namespace: str, **values: str | None) -> tuple[str, ...]:
    """The values, each one non-blank, or the refusal that names those that are not."""
    blank = [name.replace("_", " ") for name, value in values.items() if not (value or "").strip()]
    if blank:
        raise IdentityMisconfigured(
            f"namespace '{namespace}': {plan.kind} needs a {', '.join(blank)}",
            namespace=namespace,
            source=source_of(plan),
        )
    return tuple(value or "" for value in values.values())


def held_values(plan: Plan, namespace: str, tools: Tools, **given: str | None) -> sources.Values:
    """The values a fetch needs: those the plan holds, the rest from its Secret per fetch."""
    if plan.secret_name is None and None in given.values():
        raise IdentityMisconfigured(
            f"namespace '{namespace}': {plan.origin} gives no secret for {plan.kind}",
            namespace=namespace,
            source=plan.origin,
        )
    require(plan, namespace, **{k: v for k, v in given.items() if v is not None})
    return sources.values(tools.read_secret, namespace, plan.secret_name, given)


def token_file_of(plan: Plan, namespace: str) -> sources.SubjectToken:
    """The plan's token file, read at every fetch from the first of its places that exists;
    a refusal names the file and the setting that pointed to it."""
    (path,) = require(plan, namespace, token_file=plan.token_file)
    return sources.token_file(
        path,
        namespace=namespace,
        fallbacks=plan.token_fallbacks,
        settings=dict(plan.token_settings),
    )


def scope_of(plan: Plan, options: IdentityOptions) -> str:
    """The space-separated OAuth scope the plan asks for: its own, or the gateway's default."""
    return " ".join(plan.scopes or options.oauth_scopes)


def exchange(plan: Plan, namespace: str, tools: Tools, subject: sources.SubjectToken) -> Fetch:
    """RFC 8693 exchange at the workspace of a subject JWT obtained afresh for every fetch."""
    host, client_id, source = plan.workspace.host, plan.client_id, source_of(plan)
    scope = scope_of(plan, tools.options)

    async def fetch() -> AccessToken:
        return await tools.tokens.exchange(
            host,
            await subject(),
            client_id=client_id,
            namespace=namespace,
            source=source,
            scope=scope,
        )

    return fetch


def entra(
    plan: Plan,
    namespace: str,
    tools: Tools,
    tenant_id: str,
    client_id: str,
    proof: sources.Values,
) -> Fetch:
    """Client credentials at Entra ID; ``proof`` says how the client proves itself."""
    authority, source = tools.options.azure_authority, source_of(plan)

    async def fetch() -> AccessToken:
        return await tools.tokens.entra(
            authority, tenant_id, client_id, await proof(), namespace=namespace, source=source
        )

    return fetch
