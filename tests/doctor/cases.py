"""The namespaces the doctor is run for: one identity kind each, healthy or broken in one way.

A ``Case`` starts the identity stack (``tests.fixtures.identity_stack``) with its tenant policy
and gateway options, then makes the Kubernetes objects and emulator principals its namespace
needs. ``secrets`` are the values that must never appear in a report or the CLI's output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.fixtures.identity_stack import (
    AZURE_SECRET,
    AZURE_SECRET_APP,
    AZURE_SECRET_CLIENT_ID,
    AZURE_TENANT_ID,
    AZURE_WI_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    LAKEGATE_LABEL,
    POD_CLIENT_ID,
    IdentityStack,
)

NS = "team-a"
AZURE_DEVOPS = "azureDevOpsServices"
AZURE_DEVOPS_RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"
CLIENT_ID_ANNOTATION = "lakegate.io/databricks-client-id"


@dataclass(frozen=True)
class Case:
    name: str
    healthy: bool
    # The step that fails first, when not healthy.
    fails: str | None = None
    tenants: Mapping[str, Any] = field(default_factory=dict)
    identity: Mapping[str, Any] = field(default_factory=dict)
    default_identity: bool = False
    # Apps added to the emulated Entra tenant.
    entra_apps: Sequence[Mapping[str, Any]] = ()
    # Makes the namespace's objects; returns the secret values it created.
    setup: Callable[[IdentityStack], list[str]] = lambda stack: []


def _pat(stack: IdentityStack) -> list[str]:
    return [stack.pat_secret(NS).secret or ""]


def _pat_revoked(stack: IdentityStack) -> list[str]:
    pat = stack.pat_secret(NS).secret or ""
    assert stack.emulator.identity.revoke_token(pat)
    return [pat]


HOOK = "https://hooks.example.com/lakegate"
SIGNING = "whsec_" + "c2lnbmluZy1zZWNyZXQtb2YtdGVhbS1h"


def _pat_and_signing(stack: IdentityStack) -> list[str]:
    stack.kube.put_secret(NS, "webhook-signing", {"secret": SIGNING})
    return [*_pat(stack), SIGNING]


def _pat_and_unkeyed_signing(stack: IdentityStack) -> list[str]:
    stack.kube.put_secret(NS, "webhook-signing", {"key": SIGNING})
    return [*_pat(stack), SIGNING]


def _oauth(stack: IdentityStack) -> list[str]:
    return [stack.oauth_secret(NS).secret or ""]


def _oauth_wrong_secret(stack: IdentityStack) -> list[str]:
    sp = stack.add_service_principal()
    wrong = "dose" + "0" * 32
    stack.kube.put_secret(
        NS, "databricks-oauth", {"client_id": str(sp.application_id), "client_secret": wrong}
    )
    return [wrong, sp.secret or ""]


def _secret_without_keys(stack: IdentityStack) -> list[str]:
    stack.kube.put_secret(NS, "databricks-oauth", {"username": "someone"})
    return []


def _labelled(stack: IdentityStack) -> list[str]:
    stack.labelled_service_account(NS, "runner")
    return []


def _blank_client_id(stack: IdentityStack) -> list[str]:
    stack.labelled_service_account(NS, "runner", client_id=False)
    return []


def _unlabelled(stack: IdentityStack) -> list[str]:
    stack.kube.create_service_account(
        NS, "runner", annotations={CLIENT_ID_ANNOTATION: "5e1f0000-0000-4000-8000-000000000001"}
    )
    return []


def _federation_refused(stack: IdentityStack) -> list[str]:
    # The principal trusts another ServiceAccount's tokens, not this one's.
    sp = stack.add_service_principal(secret=False, subject="system:serviceaccount:other:runner")
    stack.kube.create_service_account(
        NS,
        "runner",
        labels={LAKEGATE_LABEL: "true"},
        annotations={CLIENT_ID_ANNOTATION: str(sp.application_id)},
    )
    return []


def _other_workspace(stack: IdentityStack) -> list[str]:
    stack.labelled_service_account(NS, "runner", workspace="elsewhere")
    return []


def _two_labelled(stack: IdentityStack) -> list[str]:
    stack.labelled_service_account(NS, "etl")
    stack.labelled_service_account(NS, "reports")
    return []


def _azure_secret(stack: IdentityStack) -> list[str]:
    stack.kube.put_secret(NS, "azure-sp", {"client_secret": AZURE_SECRET})
    return [AZURE_SECRET]


AZURE_SECRET_POLICY = {
    "type": "azure-client-secret",
    "tenant_id": AZURE_TENANT_ID,
    "client_id": AZURE_SECRET_CLIENT_ID,
    "secret": {"name": "azure-sp"},
}
# An app Entra refuses Azure DevOps tokens (not assigned to the resource: AADSTS501051).
NO_DEVOPS_CLIENT_ID = "a2a2e000-0000-4000-8000-000000000003"
NO_DEVOPS_SECRET = "azure-no-devops-secret-value-000003"
NO_DEVOPS_APP = {
    "client_id": NO_DEVOPS_CLIENT_ID,
    "name": "azure-no-devops-app",
    "secrets": [NO_DEVOPS_SECRET],
    "unassigned_resources": [AZURE_DEVOPS_RESOURCE],
}


def _azure_secret_held(stack: IdentityStack) -> list[str]:
    """The principal already holds its Azure DevOps credential (written at an earlier run)."""
    store = stack.emulator.workspace.git_credentials
    assert store.create(AZURE_SECRET_APP, AZURE_DEVOPS, AZURE_SECRET_CLIENT_ID, None)
    return _azure_secret(stack)


def _no_devops(stack: IdentityStack) -> list[str]:
    stack.kube.put_secret(NS, "azure-sp", {"client_secret": NO_DEVOPS_SECRET})
    return [NO_DEVOPS_SECRET]


def _git_credentials_refused(stack: IdentityStack) -> list[str]:
    stack.emulator.fault(
        path="/api/2.0/git-credentials",
        status=403,
        error_code="PERMISSION_DENIED",
        message="Service principal cannot use Git credentials",
    )
    return _azure_secret(stack)


AZURE_WI_POLICY = {
    "type": "azure-workload-identity",
    "tenant_id": AZURE_TENANT_ID,
    "client_id": AZURE_WI_CLIENT_ID,
}
POD_POLICY = {"type": "pod-token-federation", "client_id": POD_CLIENT_ID}


def policy_of(identity: Mapping[str, Any], **more: Any) -> dict[str, Any]:
    return {NS: {"identity": dict(identity), **more}}


CASES = (
    Case("pat-healthy", True, setup=_pat),
    Case("pat-revoked", False, "jobs-api", setup=_pat_revoked),
    Case(
        "pat-git-credentials-entra",
        False,
        "git-credentials",
        tenants={NS: {"git_credentials": "entra"}},
        setup=_pat,
    ),
    Case("oauth-m2m-healthy", True, setup=_oauth),
    Case("oauth-m2m-wrong-secret", False, "token", setup=_oauth_wrong_secret),
    Case("secret-without-keys", False, "identity", setup=_secret_without_keys),
    Case("service-account-healthy", True, setup=_labelled),
    Case("service-account-blank-client-id", False, "identity", setup=_blank_client_id),
    Case("service-account-missing-label", False, "identity", setup=_unlabelled),
    Case("service-account-federation-refused", False, "token", setup=_federation_refused),
    Case("service-account-workspace-not-allowed", False, "identity", setup=_other_workspace),
    Case("service-account-two-labelled", False, "identity", setup=_two_labelled),
    Case("pod-token-healthy", True, tenants=policy_of(POD_POLICY)),
    Case(
        "pod-token-file-missing",
        False,
        "policy",
        tenants=policy_of({**POD_POLICY, "token_file": "/nonexistent/lakegate/token"}),
    ),
    Case(
        "pod-token-federation-refused",
        False,
        "token",
        # The pod's token is trusted by gateway-pod's policy only, not by this principal's.
        tenants=policy_of({**POD_POLICY, "client_id": AZURE_SECRET_CLIENT_ID}),
    ),
    Case("azure-secret-healthy", True, tenants=policy_of(AZURE_SECRET_POLICY), setup=_azure_secret),
    Case(
        "azure-secret-git-credentials-healthy",
        True,
        tenants=policy_of(AZURE_SECRET_POLICY, git_credentials="entra"),
        setup=_azure_secret,
    ),
    Case(
        "azure-secret-git-credentials-held",
        True,
        tenants=policy_of(AZURE_SECRET_POLICY, git_credentials="entra"),
        setup=_azure_secret_held,
    ),
    Case(
        "azure-secret-git-credentials-no-devops-access",
        False,
        "git-credentials",
        tenants=policy_of(
            {**AZURE_SECRET_POLICY, "client_id": NO_DEVOPS_CLIENT_ID}, git_credentials="entra"
        ),
        entra_apps=(NO_DEVOPS_APP,),
        setup=_no_devops,
    ),
    Case(
        "azure-secret-git-credentials-api-refuses",
        False,
        "git-credentials",
        tenants=policy_of(AZURE_SECRET_POLICY, git_credentials="entra"),
        setup=_git_credentials_refused,
    ),
    Case("azure-secret-missing-secret", False, "source", tenants=policy_of(AZURE_SECRET_POLICY)),
    Case(
        "azure-secret-env-unset",
        False,
        "policy",
        tenants=policy_of(
            {
                "type": "azure-client-secret",
                "tenant_id": AZURE_TENANT_ID,
                "client_id": AZURE_SECRET_CLIENT_ID,
                "client_secret_env": "TEAM_A_AZURE_SECRET",
            }
        ),
    ),
    Case("azure-workload-identity-healthy", True, tenants=policy_of(AZURE_WI_POLICY)),
    Case(
        "azure-workload-identity-not-federated",
        False,
        "token",
        tenants=policy_of({**AZURE_WI_POLICY, "client_id": AZURE_SECRET_CLIENT_ID}),
    ),
    Case("not-configured", False, "identity"),
    Case(
        "default-identity-healthy",
        True,
        identity={"default_for_unconfigured": True},
        default_identity=True,
        setup=lambda stack: [DEFAULT_CLIENT_SECRET],
    ),
    Case(
        "webhook-healthy",
        True,
        tenants={NS: {"webhooks": {"url": HOOK, "secret": {"name": "webhook-signing"}}}},
        setup=_pat_and_signing,
    ),
    Case(
        "webhook-secret-without-key",
        False,
        "webhook",
        tenants={NS: {"webhooks": {"url": HOOK, "secret": {"name": "webhook-signing"}}}},
        setup=_pat_and_unkeyed_signing,
    ),
    Case(
        "webhook-secret-missing",
        False,
        "webhook",
        tenants={NS: {"webhooks": {"url": HOOK, "secret": {"name": "webhook-signing"}}}},
        setup=_pat,
    ),
)
