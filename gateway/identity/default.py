"""The gateway's own identity, read from the environment variables the Databricks SDK uses.

It serves namespaces whose policy says ``type: default``, and unconfigured namespaces only
when the operator set ``identity.default_for_unconfigured``. The kinds of ``DEFAULT_ORDER``
are tried against the environment in the SDK's order (PAT, OAuth M2M, OIDC token file, Entra
client secret, Azure workload identity); ``DATABRICKS_AUTH_TYPE`` picks one when several are
present.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import ConfigError
from gateway.identity import kinds
from gateway.identity.strategy import Environment, IdentityKind, Plan, PlanContext, WorkspaceRef
from gateway.settings import Settings

ORIGIN = "gateway default identity"


def default_plan(settings: Settings, environ: Mapping[str, str]) -> Plan | None:
    """The default identity's plan, None when the environment holds none; ConfigError when it
    holds one for a host off the allow-list or with parts missing."""
    env = Environment(environ)
    host = env.get("DATABRICKS_HOST")
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
    chosen = _choose(env)
    if chosen is None:
        return None
    kind, identity = chosen
    # One identity for every namespace that uses it: its plan is shared, made for none.
    where = PlanContext(
        settings, "", WorkspaceRef(found[0], found[1].host), origin=ORIGIN, shared=True
    )
    return kind.plan(identity, where)


def _choose(env: Environment) -> tuple[IdentityKind[Any], Any] | None:
    """The kind the environment holds (the one DATABRICKS_AUTH_TYPE names, if set), and the
    settings it describes."""
    candidates = [
        (kind, identity)
        for kind in kinds.DEFAULT_ORDER
        if (identity := kind.from_environment(env)) is not None
    ]
    wanted = env.get("DATABRICKS_AUTH_TYPE")
    if wanted is None:
        return candidates[0] if candidates else None
    for kind, identity in candidates:
        if kind.auth_type == wanted:
            return kind, identity
    available = ", ".join(str(kind.auth_type) for kind, _ in candidates) or "none"
    raise ConfigError(
        [
            f"environment DATABRICKS_AUTH_TYPE: '{wanted}' is set but its variables are "
            f"missing (available: {available})"
        ]
    )
