"""The gateway's own identity, read from the environment variables the Databricks SDK uses.

It serves namespaces whose policy says ``type: default``, and unconfigured namespaces only
when the operator set ``identity.default_for_unconfigured``. Which method the environment
holds is decided once, by ``gateway.settings.sdk_env`` (the same reading ``lakegate
check-config`` reports from): ``DATABRICKS_AUTH_TYPE`` picks one, two complete methods without
it are an error, and the chosen method's kind (``kinds.DEFAULT_ORDER``) reads its variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import ConfigError
from gateway.identity import kinds
from gateway.identity.strategy import Environment, IdentityKind, Plan, PlanContext, WorkspaceRef
from gateway.settings import Settings, sdk_env

ORIGIN = "gateway default identity"


def problems(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """What is wrong with the gateway's SDK environment, one line each (none: it is usable)."""
    return sdk_env.check(settings, environ)


def default_plan(settings: Settings, environ: Mapping[str, str]) -> Plan | None:
    """The default identity's plan, None when the environment holds none; ConfigError (every
    problem, one line each) when what it holds cannot be used."""
    found = problems(settings, environ)
    if found:
        raise ConfigError(found)
    choice = sdk_env.choose(environ)
    if choice.host is None or choice.method is None:
        return None
    listed = settings.workspace_named(choice.host)
    if listed is None:  # problems() said so already; kept for the type checker
        raise ConfigError([f"environment DATABRICKS_HOST: {choice.host} is not listed"])
    kind, identity = _identity(choice.method, Environment(environ))
    # One identity for every namespace that uses it: its plan is shared, made for none.
    where = PlanContext(
        settings,
        "",
        WorkspaceRef(listed[0], listed[1].host),
        origin=ORIGIN,
        environ=environ,
        shared=True,
    )
    return kind.plan(identity, where)


def _identity(method: sdk_env.Method, env: Environment) -> tuple[IdentityKind[Any], Any]:
    """The settings the chosen method's kind reads from the environment."""
    for kind in kinds.DEFAULT_ORDER:
        if kind.auth_type == method.auth_type:
            identity = kind.from_environment(env)
            if identity is not None:
                return kind, identity
    # sdk_env and the kinds read the same variables; a disagreement is a bug here.
    raise ConfigError([f"environment: {method.describe()} is complete but lakegate cannot read it"])
