"""Which identity a namespace gets, decided without I/O.

A ``Plan`` names everything needed to build a credential except secret values held in
Kubernetes, which are read when a token is fetched. Plans come from, in this order (first
match wins, DESIGN.md "Identity"):

1. the tenant policy, when it names an identity;
2. a ServiceAccount of the namespace labelled ``lakegate.io/databricks-enabled=true`` (or
   Flyte's ``flyte.org/databricks-enabled=true``): federation with a token minted for it;
3. the Secret ``databricks-oauth`` (OAuth M2M) or ``databricks-token`` (PAT);
4. the gateway's own identity, only where the operator opted in.

Every workspace a plan points at is on the allow-list, whatever an annotation says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol

from gateway.errors import HostNotAllowed, IdentityMisconfigured
from gateway.identity import kinds, sources
from gateway.identity.strategy import POLICY_ORIGIN, Plan, PlanContext, WorkspaceRef
from gateway.settings import IdentitySettings, Settings

ENABLED_LABELS = ("lakegate.io/databricks-enabled", "flyte.org/databricks-enabled")
ENABLED_SELECTORS = tuple(f"{label}=true" for label in ENABLED_LABELS)
SECRET_LABEL = ENABLED_LABELS[0]
CLIENT_ID_ANNOTATIONS = ("lakegate.io/databricks-client-id", "flyte.org/databricks-client-id")
AUDIENCE_ANNOTATIONS = ("lakegate.io/databricks-audience", "flyte.org/databricks-audience")
WORKSPACE_ANNOTATIONS = ("lakegate.io/databricks-workspace",)
OAUTH_SECRET = "databricks-oauth"  # noqa: S105 - the Secret's name, not a value
PAT_SECRET = "databricks-token"  # noqa: S105 - the Secret's name, not a value
WELL_KNOWN_SECRETS = (OAUTH_SECRET, PAT_SECRET)
CLIENT_ID_KEY = "client_id"


class Account(Protocol):
    """What plans need of a ServiceAccount (``gateway.kube.accounts.ServiceAccountRef``)."""

    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...


def is_enabled(account: Account) -> bool:
    return any(account.labels.get(label) == "true" for label in ENABLED_LABELS)


def _annotation(account: Account, names: Sequence[str]) -> str | None:
    for name in names:
        value = account.annotations.get(name, "").strip()
        if value:
            return value
    return None


def workspace_of(settings: Settings, namespace: str, wanted: str | None = None) -> WorkspaceRef:
    """The namespace's workspace, or the one ``wanted`` names; it must be on the allow-list."""
    if wanted is not None:
        found = settings.workspace_named(wanted)
        if found is None:
            raise HostNotAllowed(
                f"namespace '{namespace}' asks for workspace '{wanted}', which is not on the "
                f"gateway's allow-list ({', '.join(sorted(settings.workspaces)) or 'empty'}); "
                "lakegate never sends a credential to an unlisted host",
                namespace=namespace,
            )
        return WorkspaceRef(found[0], found[1].host)
    name = settings.tenants.workspace_name(namespace)
    listed = settings.workspaces.get(name) if name else None
    if name is None or listed is None:
        raise HostNotAllowed(
            f"namespace '{namespace}' has no workspace: set 'workspace' in its tenant policy, "
            "'defaults.workspace' in the tenants file, or annotate its ServiceAccount with "
            f"{WORKSPACE_ANNOTATIONS[0]}",
            namespace=namespace,
        )
    return WorkspaceRef(name, listed.host)


def from_policy(
    settings: Settings,
    namespace: str,
    identity: IdentitySettings,
    environ: Mapping[str, str],
    default: Plan | None,
) -> Plan:
    """The plan for an identity the operator wrote in the tenant policy."""
    kind = kinds.for_settings(identity)
    if kind is not None:
        where = PlanContext(settings, namespace, workspace_of(settings, namespace), environ=environ)
        return kind.plan(identity, where)
    # ``type: default`` names the gateway's own identity rather than a kind of its own.
    if default is None:
        raise IdentityMisconfigured(
            f"namespace '{namespace}' is set to the gateway's default identity, but the "
            "gateway has none (set DATABRICKS_HOST and a DATABRICKS_* credential)",
            namespace=namespace,
            source=POLICY_ORIGIN,
        )
    return default


def client_id_of(account: Account) -> str | None:
    """The service principal a labelled ServiceAccount federates as, trimmed; None if blank."""
    return _annotation(account, CLIENT_ID_ANNOTATIONS)


def _flavour(account: Account) -> int:
    """0 for lakegate's label, 1 for Flyte's: which family of names the account was set up with."""
    return next(i for i, label in enumerate(ENABLED_LABELS) if account.labels.get(label) == "true")


def missing_client_id(namespace: str, accounts: Sequence[Account]) -> IdentityMisconfigured:
    """The refusal for labelled ServiceAccounts that name no service principal (as Flyte,
    lakegate does not take one for an identity without its client id). It names the label and
    annotation of the family the account uses: Flyte's for an account set up for Flyte."""
    ordered = sorted(accounts, key=lambda a: a.name)
    names = ", ".join(f"'{a.name}'" for a in ordered)
    flavour = _flavour(ordered[0]) if ordered and is_enabled(ordered[0]) else 0
    return IdentityMisconfigured(
        f"namespace '{namespace}': ServiceAccount {names} is labelled "
        f"{ENABLED_SELECTORS[flavour]} but has no {CLIENT_ID_ANNOTATIONS[flavour]} annotation "
        "(or a blank one), so it names no service principal: annotate it with the client id "
        "of the service principal whose federation policy trusts it",
        namespace=namespace,
        source=f"ServiceAccount {names}",
    )


def from_service_account(settings: Settings, account: Account) -> Plan:
    """Federation with a token minted for a labelled ServiceAccount, per its annotations."""
    namespace = account.namespace
    client_id = client_id_of(account)
    if client_id is None:
        raise missing_client_id(namespace, [account])
    workspace = workspace_of(settings, namespace, _annotation(account, WORKSPACE_ANNOTATIONS))
    identity = kinds.SERVICE_ACCOUNT.labelled(
        account.name,
        client_id=client_id,
        audience=_annotation(account, AUDIENCE_ANNOTATIONS),
    )
    where = PlanContext(
        settings, namespace, workspace, origin=f"ServiceAccount '{account.name}'", discovered=True
    )
    return kinds.SERVICE_ACCOUNT.plan(identity, where)


def choose_account(namespace: str, labelled: Sequence[Account]) -> Account | None:
    """The one labelled ServiceAccount of the namespace; two or more is the operator's error."""
    if len(labelled) > 1:
        names = ", ".join(sorted(a.name for a in labelled))
        raise IdentityMisconfigured(
            f"namespace '{namespace}' has several ServiceAccounts labelled for Databricks "
            f"({names}): remove the label from all but one, or name one in the request "
            "(identity.service_account)",
            namespace=namespace,
            source="ServiceAccounts",
        )
    return labelled[0] if labelled else None


def held_client_id(data: Mapping[str, bytes]) -> str | None:
    """The client id a Secret holds, trimmed, when it is one a request may carry; None when
    absent or malformed (the fetch then reads it and refuses it, naming the key)."""
    try:
        value = data.get(CLIENT_ID_KEY, b"").decode().strip()
    except (UnicodeDecodeError, AttributeError):
        return None
    return value if value and sources.malformed(value) is None else None


def from_secret(settings: Settings, namespace: str, name: str, data: Mapping[str, bytes]) -> Plan:
    """The first kind whose keys the Secret holds (OAuth M2M before PAT), read from it.

    A client id the Secret holds is part of the plan, read with the Secret's keys: it is whom
    the run is created as (``gateway.identity.principal``), so a Secret edited to another
    service principal is another principal, while a rotated client secret is read per fetch.
    """
    origin = f"Secret '{name}'"
    keys = sorted(data)
    if {"token", "ca.crt", "namespace"} <= set(keys):
        # A ServiceAccount token Secret: its token is a Kubernetes credential, which must
        # never be sent to Databricks as if it were a PAT.
        raise IdentityMisconfigured(
            f"Secret '{name}' in namespace '{namespace}' is a Kubernetes ServiceAccount token, "
            "not a Databricks credential",
            namespace=namespace,
            source=origin,
        )
    kind = next((k for k in kinds.SECRET_KINDS if k.secret_keys <= set(keys)), None)
    if kind is None:
        wanted = " nor ".join(
            f"{' and '.join(repr(key) for key in sorted(k.secret_keys))} ({k.title})"
            for k in kinds.SECRET_KINDS
        )
        raise IdentityMisconfigured(
            f"Secret '{name}' in namespace '{namespace}' holds neither {wanted}",
            namespace=namespace,
            source=origin,
        )
    where = PlanContext(
        settings, namespace, workspace_of(settings, namespace), origin=origin, discovered=True
    )
    plan = kind.plan(kind.in_secret(name), where)
    client_id = held_client_id(data) if CLIENT_ID_KEY in kind.secret_keys else None
    return dataclasses.replace(plan, client_id=client_id) if client_id else plan


def not_configured_message(
    namespace: str, *, kubernetes: bool, secret_names: Sequence[str] = WELL_KNOWN_SECRETS
) -> str:
    ways = [f"add an identity for '{namespace}' to the tenants file"]
    if kubernetes:
        ways.append(
            f"label a ServiceAccount in it {ENABLED_SELECTORS[0]} (or Flyte's "
            f"{ENABLED_SELECTORS[1]}) and annotate it with its service principal's client id"
        )
        if tuple(secret_names) == WELL_KNOWN_SECRETS:
            ways.append(
                f"create a Secret '{OAUTH_SECRET}' (client_id, client_secret) or "
                f"'{PAT_SECRET}' (token) in it"
            )
        else:
            # identity.secret_names: any of them, of either kind by the keys it holds.
            names = " or ".join(f"'{name}'" for name in secret_names)
            ways.append(
                f"create a Secret {names} in it holding client_id and client_secret, or token"
            )
    return (
        f"namespace '{namespace}' has no Databricks identity and lakegate does not lend it "
        "another's: " + "; or ".join(ways)
    )


def is_offered(labels: Mapping[str, str]) -> bool:
    """Whether a Secret's labels offer it to requests (``lakegate.io/databricks-enabled``)."""
    return labels.get(SECRET_LABEL) == "true"
