"""The gateway's own identity, read from the environment variables the Databricks SDK uses.

It serves namespaces whose policy says ``type: default``, and unconfigured namespaces only
when the operator set ``identity.default_for_unconfigured``. ``DATABRICKS_AUTH_TYPE`` picks
one when several are present; otherwise the SDK's order applies: PAT, OAuth M2M, OIDC token
file, Entra client secret, Azure workload identity.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from gateway.errors import ConfigError
from gateway.identity.plans import Plan, Workspace
from gateway.settings import Settings

ORIGIN = "gateway default identity"


def _get(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def default_plan(settings: Settings, environ: Mapping[str, str]) -> Plan | None:
    """The default identity's plan, None when the environment holds none; ConfigError when it
    holds one for a host off the allow-list or with parts missing."""
    host = _get(environ, "DATABRICKS_HOST")
    if host is None:
        return None
    if not host.lower().startswith(("https://", "http://")):
        host = f"https://{host}"
    found = settings.workspace_named(host)
    if found is None:
        raise ConfigError(
            [
                f"environment DATABRICKS_HOST: {host} is not on the workspaces allow-list; "
                "the gateway's own identity may only be sent to a listed host"
            ]
        )
    workspace = Workspace(found[0], found[1].host)
    candidates = _candidates(environ, workspace)
    wanted = _get(environ, "DATABRICKS_AUTH_TYPE")
    if wanted is not None:
        for auth_type, plan in candidates:
            if auth_type == wanted:
                return plan
        raise ConfigError(
            [
                f"environment DATABRICKS_AUTH_TYPE: '{wanted}' is set but its variables are "
                f"missing (available: {', '.join(a for a, _ in candidates) or 'none'})"
            ]
        )
    return candidates[0][1] if candidates else None


def _candidates(environ: Mapping[str, str], workspace: Workspace) -> list[tuple[str, Plan]]:
    out: list[tuple[str, Plan]] = []
    token = _get(environ, "DATABRICKS_TOKEN")
    if token:
        out.append(
            ("pat", Plan("pat", workspace, ORIGIN, inline_secret=SecretStr(token), shared=True))
        )
    client_id = _get(environ, "DATABRICKS_CLIENT_ID")
    client_secret = _get(environ, "DATABRICKS_CLIENT_SECRET")
    if client_id and client_secret:
        out.append(
            (
                "oauth-m2m",
                Plan(
                    "oauth-m2m",
                    workspace,
                    ORIGIN,
                    client_id=client_id,
                    inline_secret=SecretStr(client_secret),
                    shared=True,
                ),
            )
        )
    token_file = _get(environ, "DATABRICKS_OIDC_TOKEN_FILEPATH", "DATABRICKS_OIDC_TOKEN_FILE")
    if token_file:
        out.append(
            (
                "file-oidc",
                Plan(
                    "pod-token-federation",
                    workspace,
                    ORIGIN,
                    client_id=client_id,
                    token_file=token_file,
                    shared=True,
                ),
            )
        )
    arm = (_get(environ, "ARM_TENANT_ID"), _get(environ, "ARM_CLIENT_ID"))
    arm_secret = _get(environ, "ARM_CLIENT_SECRET")
    if arm[0] and arm[1] and arm_secret:
        out.append(
            (
                "azure-client-secret",
                Plan(
                    "azure-client-secret",
                    workspace,
                    ORIGIN,
                    tenant_id=arm[0],
                    client_id=arm[1],
                    inline_secret=SecretStr(arm_secret),
                    shared=True,
                ),
            )
        )
    wi = (
        _get(environ, "AZURE_TENANT_ID"),
        _get(environ, "AZURE_CLIENT_ID"),
        _get(environ, "AZURE_FEDERATED_TOKEN_FILE"),
    )
    if wi[0] and wi[1] and wi[2]:
        out.append(
            (
                "azure-workload-identity",
                Plan(
                    "azure-workload-identity",
                    workspace,
                    ORIGIN,
                    tenant_id=wi[0],
                    client_id=wi[1],
                    token_file=wi[2],
                    shared=True,
                ),
            )
        )
    return out
