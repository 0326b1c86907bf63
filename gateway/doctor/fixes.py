"""What to do about each way a namespace's path fails, worded for the team that owns it. Pure.

Every fix names the object to change and how; the federation fix spells out the policy the
workspace must hold, with the issuer, subject and audience of the token lakegate presented
(never the token itself).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.errors import (
    HostNotAllowed,
    IdentityForbidden,
    IdentityNotConfigured,
    LakegateError,
)
from gateway.identity import plans

LABEL = plans.ENABLED_SELECTORS[0]
CLIENT_ID_ANNOTATION = plans.CLIENT_ID_ANNOTATIONS[0]


def not_configured(namespace: str) -> str:
    return (
        f"label a ServiceAccount: kubectl label serviceaccount <name> -n {namespace} {LABEL} "
        f"and kubectl annotate serviceaccount <name> -n {namespace} "
        f"{CLIENT_ID_ANNOTATION}=<service principal application id>; or create a Secret "
        f"'{plans.OAUTH_SECRET}' (client_id, client_secret) or '{plans.PAT_SECRET}' (token) in "
        f"'{namespace}'; or ask an operator for an identity in the tenants file"
    )


def missing_client_id(namespace: str, accounts: Sequence[str]) -> str:
    name = accounts[0] if accounts else "<name>"
    return (
        f"kubectl annotate serviceaccount {name} -n {namespace} "
        f"{CLIENT_ID_ANNOTATION}=<application id of the service principal whose federation "
        "policy trusts it>"
    )


def several_labelled(namespace: str, accounts: Sequence[str]) -> str:
    keep, *others = accounts or ["<name>"]
    label = plans.ENABLED_LABELS[0]
    drop = "; ".join(
        f"kubectl label serviceaccount {name} -n {namespace} {label}-" for name in others
    )
    return f"keep the label on one ServiceAccount ('{keep}') only: {drop or 'remove the others'}"


def secret_keys(namespace: str, secret: str) -> str:
    return (
        f"put keys client_id and client_secret (OAuth M2M) or token (PAT) in Secret '{secret}' "
        f"of '{namespace}', one file per key (kubectl create secret generic {secret} "
        f"-n {namespace} --from-file=<key>=<file holding its value>)"
    )


def workspace(names: Sequence[str]) -> str:
    return (
        f"annotate with {plans.WORKSPACE_ANNOTATIONS[0]} one of the gateway's workspaces "
        f"({', '.join(names) or 'none listed'}), or set 'workspace' in the tenant policy; only an "
        "operator can add a workspace to gateway.yaml's workspaces allow-list"
    )


def rbac(namespace: str) -> str:
    return (
        "an operator must let lakegate's ServiceAccount read Secrets and create "
        f"serviceaccounts/token in '{namespace}' (deploy/base/rbac*.yaml)"
    )


def refusal(exc: LakegateError, namespace: str, facts: Mapping[str, Any]) -> str:
    """The fix for a refusal of the identity rules (``NamespaceResolver.explain``)."""
    message = exc.message
    accounts = [str(a) for a in facts.get("labelled", ())]
    if isinstance(exc, IdentityNotConfigured):
        return not_configured(namespace)
    if isinstance(exc, HostNotAllowed):
        return workspace(facts.get("workspaces", ()))
    if isinstance(exc, IdentityForbidden):
        return rbac(namespace)
    if "several ServiceAccounts labelled" in message:
        return several_labelled(namespace, accounts)
    if CLIENT_ID_ANNOTATION in message and "no " in message:
        return missing_client_id(namespace, accounts)
    if "holds neither" in message:
        return secret_keys(namespace, str(getattr(exc, "source", "") or "").split("'")[1])
    if "ServiceAccount token" in message:
        return "delete that Secret from the well-known names: it is a Kubernetes credential"
    return "correct what the cause names, then run `lakegate tenants check` again"


def federation_policy(client_id: str | None, claims: Mapping[str, Any]) -> str:
    """The policy the workspace's account must hold for the presented token to be exchanged."""
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    policy = {
        "oidc_policy": {
            "issuer": claims.get("iss"),
            "audiences": audiences,
            "subject": claims.get("sub"),
        }
    }
    who = f"service principal {client_id}" if client_id else "the account (account-wide)"
    return (
        f"the Databricks account must hold a federation policy for {who} that trusts this token: "
        f"{json.dumps(policy, separators=(',', ':'))} (Account API "
        "servicePrincipals/{sp_id}/federationPolicies, or the account console)"
    )


def entra_credential(client_id: str, claims: Mapping[str, Any] | None) -> str:
    if claims is None:
        return (
            f"check that Entra app {client_id} exists in the tenant and that its client secret "
            "(in the tenant policy or its Secret) is current, not expired"
        )
    audience = claims.get("aud")
    audiences = ", ".join(audience) if isinstance(audience, list) else audience
    return (
        f"Entra app {client_id} must hold a federated credential with issuer "
        f"{claims.get('iss')}, subject {claims.get('sub')} and audience {audiences}"
    )


def oauth_secret(where: str) -> str:
    return (
        f"the service principal's OAuth client id and secret were refused: put its current "
        f"client_id and client_secret in {where} (Databricks: service principal > Secrets)"
    )


def jobs_refused(kind: str, where: str, *, refused_token: bool) -> str:
    if refused_token and kind == "pat":
        return (
            f"the PAT is revoked, expired or unknown to the workspace: create a new token and "
            f"replace it in {where}"
        )
    if not refused_token:
        return (
            "the principal is known but may not list runs: grant it access to the workspace "
            "(workspace admin settings > identity and access)"
        )
    return (
        "the workspace refused the token it issued: add the service principal to the "
        "workspace (workspace admin settings > identity and access)"
    )
