"""The Databricks SDK's environment, read for the gateway's own identity, and what is wrong in it.

Pure: a mapping of variables in, a choice or a list of one-line problems out, so that
``lakegate check-config`` and start-up report the same mistakes the same way (exit 2, one line
each, no traceback) and ``gateway.identity.default`` builds the identity from the same choice.

As the SDKs read it (reference §4.3, §6): ``DATABRICKS_HOST``; a method is complete when all
its variables are set (``DATABRICKS_TOKEN``; ``DATABRICKS_CLIENT_ID`` + ``_SECRET``;
``DATABRICKS_OIDC_TOKEN`` or the variable ``DATABRICKS_OIDC_TOKEN_ENV`` names;
``DATABRICKS_OIDC_TOKEN_FILEPATH`` or its older alias ``_FILE``; ``ARM_*``; ``AZURE_*``).
``DATABRICKS_AUTH_TYPE`` picks one; without it two complete methods are an error naming both
("more than one authorization method configured", as the SDK says), never a silent first
pick. A credential without a host names the missing ``DATABRICKS_HOST``.

The pod's own projected token (for ``pod-token-federation``) is looked for in Flyte's order:
the explicit setting, ``AWS_WEB_IDENTITY_TOKEN_FILE``, ``/var/run/secrets/databricks/token``;
a configured path that does not exist falls through to the next.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.settings.base import normalize_host

if TYPE_CHECKING:
    from gateway.settings.gateway import Settings

HOST = "DATABRICKS_HOST"
AUTH_TYPE = "DATABRICKS_AUTH_TYPE"
OIDC_TOKEN = "DATABRICKS_OIDC_TOKEN"  # noqa: S105 (a variable's name)
OIDC_TOKEN_ENV = "DATABRICKS_OIDC_TOKEN_ENV"  # noqa: S105 (a variable's name)
OIDC_TOKEN_FILES = ("DATABRICKS_OIDC_TOKEN_FILEPATH", "DATABRICKS_OIDC_TOKEN_FILE")
CLIENT_ID = "DATABRICKS_CLIENT_ID"
# Flyte's connector's second place for the pod's token, after the explicit setting.
AWS_WEB_IDENTITY_TOKEN_FILE = "AWS_WEB_IDENTITY_TOKEN_FILE"  # noqa: S105 (a variable's name)
DEFAULT_POD_TOKEN_FILE = "/var/run/secrets/databricks/token"  # noqa: S105 (a path)


@dataclass(frozen=True, slots=True)
class Method:
    """One authorization method the environment holds whole: its DATABRICKS_AUTH_TYPE and the
    variables that make it (named in messages; their values never are)."""

    auth_type: str
    variables: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.auth_type} ({', '.join(self.variables)})"


@dataclass(frozen=True, slots=True)
class Choice:
    """What the environment gives the gateway: its host and the method chosen (None: none)."""

    host: str | None
    method: Method | None


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _first(environ: Mapping[str, str], *names: str) -> str | None:
    return next((name for name in names if _get(environ, name)), None)


def oidc_token_variable(environ: Mapping[str, str]) -> str:
    """The variable that holds the OIDC token: DATABRICKS_OIDC_TOKEN, or the one that
    DATABRICKS_OIDC_TOKEN_ENV names."""
    return _get(environ, OIDC_TOKEN_ENV) or OIDC_TOKEN


def _all(environ: Mapping[str, str], *names: str) -> tuple[str, ...] | None:
    return names if all(_get(environ, name) for name in names) else None


def _env_oidc(environ: Mapping[str, str]) -> tuple[str, ...] | None:
    variable = oidc_token_variable(environ)
    return (variable,) if _get(environ, variable) else None


def _file_oidc(environ: Mapping[str, str]) -> tuple[str, ...] | None:
    found = _first(environ, *OIDC_TOKEN_FILES)
    return (found,) if found else None


# In the SDK's order (py DefaultCredentials); what each needs, read from the environment.
_METHODS: tuple[tuple[str, Callable[[Mapping[str, str]], tuple[str, ...] | None]], ...] = (
    ("pat", lambda env: _all(env, "DATABRICKS_TOKEN")),
    ("oauth-m2m", lambda env: _all(env, CLIENT_ID, "DATABRICKS_CLIENT_SECRET")),
    ("env-oidc", _env_oidc),
    ("file-oidc", _file_oidc),
    (
        "azure-client-secret",
        lambda env: _all(env, "ARM_TENANT_ID", "ARM_CLIENT_ID", "ARM_CLIENT_SECRET"),
    ),
    (
        "azure-workload-identity",
        lambda env: _all(env, "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE"),
    ),
)
AUTH_TYPES: tuple[str, ...] = tuple(name for name, _ in _METHODS)
# Variables that only a Databricks credential uses: set without a host, they are a mistake.
_NEEDS_HOST = ("DATABRICKS_TOKEN", CLIENT_ID, "DATABRICKS_CLIENT_SECRET", *OIDC_TOKEN_FILES)


def methods(environ: Mapping[str, str]) -> list[Method]:
    """Every method the environment holds whole, in the SDK's order."""
    found = []
    for auth_type, needs in _METHODS:
        variables = needs(environ)
        if variables is not None:
            found.append(Method(auth_type, variables))
    return found


def problems(environ: Mapping[str, str], listed: Callable[[str], bool] | None = None) -> list[str]:
    """Each mistake in the SDK environment, one line each; ``listed`` says whether a host is
    on the workspaces allow-list (not asked when None)."""
    return _examine(environ, listed)[1]


def check(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """The problems of the gateway's SDK environment against its settings' allow-list: what
    ``lakegate check-config`` and start-up report, one line each."""
    return problems(environ, lambda host: settings.workspace_named(host) is not None)


def choose(environ: Mapping[str, str]) -> Choice:
    """The host and method the environment gives; ``ValueError`` listing its problems."""
    choice, found = _examine(environ, None)
    if found:
        raise ValueError("; ".join(found))
    return choice


def _examine(
    environ: Mapping[str, str], listed: Callable[[str], bool] | None
) -> tuple[Choice, list[str]]:
    found: list[str] = []
    host = _host(environ, found, listed)
    set_alone = [name for name in _needs_host(environ) if _get(environ, name)]
    method: Method | None = None
    # Without DATABRICKS_HOST or a Databricks credential the gateway has no identity of its
    # own to choose; Azure's variables alone (AKS injects them) are then nobody's mistake.
    if _get(environ, HOST) is not None or set_alone or _get(environ, AUTH_TYPE):
        method = _method(environ, found)
    if _get(environ, HOST) is None and set_alone:
        found.append(
            f"environment {HOST}: is not set, but {', '.join(set_alone)} is; a Databricks "
            "credential needs the workspace it is for"
        )
    oidc_env = _get(environ, OIDC_TOKEN_ENV)
    if oidc_env is not None and not _get(environ, oidc_env):
        found.append(f"environment {OIDC_TOKEN_ENV}: names {oidc_env}, which is not set or empty")
    if _get(environ, "DATABRICKS_CLIENT_SECRET") and not _get(environ, CLIENT_ID):
        found.append(f"environment {CLIENT_ID}: is not set, but DATABRICKS_CLIENT_SECRET is")
    return Choice(host, method), found


def _method(environ: Mapping[str, str], found: list[str]) -> Method | None:
    """The method DATABRICKS_AUTH_TYPE names, or the only complete one; problems to ``found``."""
    complete = methods(environ)
    wanted = _get(environ, AUTH_TYPE)
    if wanted is not None:
        return _wanted(wanted, complete, environ, found)
    if len(complete) > 1:
        described = [m.describe() for m in complete]
        named = ", ".join(described[:-1]) + " and " + described[-1]
        found.append(
            f"environment: more than one authorization method configured: {named}; set "
            f"{AUTH_TYPE} to the one the gateway's own identity uses"
        )
        return None
    return complete[0] if complete else None


def _needs_host(environ: Mapping[str, str]) -> tuple[str, ...]:
    return (*_NEEDS_HOST, oidc_token_variable(environ))


def _host(
    environ: Mapping[str, str], found: list[str], listed: Callable[[str], bool] | None
) -> str | None:
    raw = _get(environ, HOST)
    if raw is None:
        return None
    try:
        host = normalize_host(raw)
    except ValueError as exc:
        found.append(f"environment {HOST}: {exc}")
        return None
    if listed is not None and not listed(host):
        found.append(
            f"environment {HOST}: {host} is not on the workspaces allow-list; the gateway's "
            "own identity may only be sent to a listed host"
        )
    return host


def _wanted(
    wanted: str, complete: list[Method], environ: Mapping[str, str], found: list[str]
) -> Method | None:
    if wanted not in AUTH_TYPES:
        found.append(
            f"environment {AUTH_TYPE}: '{wanted}' is not an auth type lakegate knows "
            f"(valid: {', '.join(AUTH_TYPES)})"
        )
        return None
    chosen = next((m for m in complete if m.auth_type == wanted), None)
    if chosen is None:
        available = ", ".join(m.auth_type for m in complete) or "none"
        found.append(
            f"environment {AUTH_TYPE}: '{wanted}' is set but its variables are missing "
            f"(needs {_needs(wanted, environ)}; available: {available})"
        )
    return chosen


def _needs(auth_type: str, environ: Mapping[str, str]) -> str:
    return {
        "pat": "DATABRICKS_TOKEN",
        "oauth-m2m": f"{CLIENT_ID} and DATABRICKS_CLIENT_SECRET",
        "env-oidc": oidc_token_variable(environ),
        "file-oidc": " or ".join(OIDC_TOKEN_FILES),
        "azure-client-secret": "ARM_TENANT_ID, ARM_CLIENT_ID and ARM_CLIENT_SECRET",
        "azure-workload-identity": (
            "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE"
        ),
    }[auth_type]


def pod_token_files(explicit: str | None, environ: Mapping[str, str]) -> tuple[str, ...]:
    """Where the pod's own projected token may be, in Flyte's order: the explicit setting,
    ``AWS_WEB_IDENTITY_TOKEN_FILE``, ``/var/run/secrets/databricks/token``. Pure: the token
    source tries them at every read, so a configured path that does not exist falls through
    (and a file that appears later is used from the next read)."""
    found: list[str] = []
    for path in (explicit, _get(environ, AWS_WEB_IDENTITY_TOKEN_FILE), DEFAULT_POD_TOKEN_FILE):
        if path and path not in found:
            found.append(path)
    return tuple(found)
