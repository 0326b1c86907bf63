"""``lakegate check-config``'s checks beyond validation: what loads but looks wrong.

Each check is a function of the loaded settings and the environment that yields findings,
each naming the file that holds what it is about. A warning does not stop the gateway (exit
0, but printed); ``--strict`` makes warnings failures. A new check is one function appended
to ``CHECKS`` (or passed to ``run_checks``), for example the Databricks SDK environment's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from gateway.identity import kinds
from gateway.kube import KubeConfig
from gateway.settings import Settings, sdk_env
from gateway.settings.tenants import tenant_refusals
from gateway.store.postgres_dsn import DsnSource, dsn_problem


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing check-config prints: ``level`` is ``error`` or ``warning``."""

    level: str
    where: str
    message: str

    def line(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Files:
    """Which file holds which part of the settings."""

    gateway: str
    tenants: str


Check = Callable[[Settings, Files, Mapping[str, str]], Iterable[Finding]]

# Hosts and ids the shipped examples use, to be replaced before use.
_PLACEHOLDER_HOST = re.compile(r"adb-0+\.|\b(example\.(com|net|org)|replace|changeme)\b", re.I)
_PLACEHOLDER_ID = re.compile(r"^(0{8}-0{4}-0{4}-0{4}-0{12}|replace.*|changeme|<.*>)$", re.I)


def authentication_off(
    settings: Settings, files: Files, _env: Mapping[str, str]
) -> Iterator[Finding]:
    if "none" in settings.callers.methods:
        yield Finding(
            "warning",
            files.gateway,
            "callers.methods: 'none' switches authentication off; every caller may act for "
            "every namespace (demos only: list kubernetes, api_key or jwt)",
        )
    elif not settings.callers.methods:
        yield Finding(
            "warning",
            files.gateway,
            "callers.methods: empty, so nobody can call and /readyz answers 503 (list "
            "kubernetes, api_key or jwt)",
        )


def placeholders(settings: Settings, files: Files, _env: Mapping[str, str]) -> Iterator[Finding]:
    for name, workspace in settings.workspaces.items():
        if _PLACEHOLDER_HOST.search(workspace.host):
            yield Finding(
                "warning",
                files.gateway,
                f"workspaces.{name}.host: {workspace.host} looks like a placeholder; put your "
                "workspace's URL here",
            )
    for namespace, policy in settings.tenants.namespaces.items():
        client_id = getattr(policy.identity, "client_id", None)
        if isinstance(client_id, str) and _PLACEHOLDER_ID.match(client_id.strip()):
            yield Finding(
                "warning",
                files.tenants,
                f"namespaces.{namespace}.identity.client_id: {client_id} looks like a "
                "placeholder; put the service principal's application id here",
            )


def tenants_refused(settings: Settings, files: Files, env: Mapping[str, str]) -> Iterator[Finding]:
    # The gateway starts without these tenants; check-config says so before it does.
    for refusal in tenant_refusals(settings.tenants, env):
        yield Finding("warning", files.tenants, f"{refusal.message()} (the gateway starts)")


class _EverySet(Mapping[str, str]):
    """An environment in which every variable is set: unset ones are ``tenants_refused``'s
    (a warning), so the identity kinds' own problems are the rest."""

    def __getitem__(self, key: str) -> str:
        return "set"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __contains__(self, key: object) -> bool:
        return True


def identity_policies(
    settings: Settings, files: Files, _env: Mapping[str, str]
) -> Iterator[Finding]:
    # What the gateway refuses to start with: a policy that reads a Secret or mints a token
    # while kubernetes.mode is off.
    kubernetes = settings.kubernetes.mode != "off"
    for namespace, policy in settings.tenants.namespaces.items():
        kind = kinds.for_settings(policy.identity) if policy.identity else None
        if kind is None or policy.identity is None:
            continue
        for problem in kind.problems(policy.identity, _EverySet(), kubernetes=kubernetes):
            yield Finding("error", files.tenants, f"namespaces.{namespace}.identity: {problem}")


def combinations(settings: Settings, files: Files, _env: Mapping[str, str]) -> Iterator[Finding]:
    kube = settings.kubernetes
    if kube.mode == "off" and settings.identity.discover_from_kubernetes:
        configured = sum(1 for p in settings.tenants.namespaces.values() if p.identity)
        if not configured and not settings.identity.default_for_unconfigured:
            yield Finding(
                "warning",
                files.gateway,
                "kubernetes.mode is off and no tenant has an identity: no namespace can run "
                "anything (configure identities in the tenants file, or a default identity "
                "with identity.default_for_unconfigured)",
            )
    if kube.mode == "in-cluster" and settings.server.host in ("127.0.0.1", "localhost", "::1"):
        yield Finding(
            "warning",
            files.gateway,
            f"server.host: {settings.server.host} in a pod is unreachable by the Service and "
            "the kubelet's probes; use 0.0.0.0",
        )
    if kube.mode != "off":
        for problem in KubeConfig.from_settings(kube).problems():
            yield Finding("error", files.gateway, problem)


def sdk_environment(settings: Settings, files: Files, env: Mapping[str, str]) -> Iterator[Finding]:
    # The gateway's own identity read the way the Databricks SDKs read it: start-up refuses
    # these too, so they are errors, not warnings.
    for problem in sdk_env.check(settings, env):
        yield Finding("error", "environment", problem.removeprefix("environment: "))


def store_dsn(settings: Settings, files: Files, env: Mapping[str, str]) -> Iterator[Finding]:
    # The PostgreSQL DSN's source, read as the gateway will read it (the variable is set, the
    # file is there and holds a postgresql:// URL); the DSN itself is never printed.
    store = settings.store
    if store.backend != "postgres":
        return
    source = DsnSource(
        dsn=None if store.dsn is None else store.dsn.get_secret_value(),
        dsn_env=store.dsn_env,
        dsn_file=store.dsn_file,
    )
    problem = dsn_problem(source, env)
    if problem is not None:
        yield Finding("error", files.gateway, problem)


CHECKS: tuple[Check, ...] = (
    sdk_environment,
    store_dsn,
    authentication_off,
    placeholders,
    tenants_refused,
    identity_policies,
    combinations,
)


def run_checks(
    settings: Settings,
    files: Files,
    environ: Mapping[str, str],
    checks: Sequence[Check] = CHECKS,
) -> list[Finding]:
    """Every finding of every check, in the checks' order."""
    return [finding for check in checks for finding in check(settings, files, environ)]
