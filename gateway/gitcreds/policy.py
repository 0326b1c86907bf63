"""Which runs need an Azure DevOps Git credential, and which identities can keep one. Pure."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gateway.databricks.git_credentials import AZURE_DEVOPS, same_provider
from gateway.identity.azure_management import ENTRA_KINDS

# Azure DevOps' Entra resource (its application id, the same in every tenant).
AZURE_DEVOPS_RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"
AZURE_DEVOPS_SCOPE = f"{AZURE_DEVOPS_RESOURCE}/.default"
# What a run's repository is cloned with, at the latest, this long after lakegate checked:
# a token with less left is replaced first. Entra tokens live about an hour, so this is
# their last third; the background refresher covers runs whose tasks start later still.
MAX_REFRESH_AHEAD_SECONDS = 20 * 60.0


def _git_sources(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    top = spec.get("git_source")
    if isinstance(top, Mapping):
        yield top
    tasks = spec.get("tasks")
    if isinstance(tasks, list):
        for task in tasks:
            source = task.get("git_source") if isinstance(task, Mapping) else None
            if isinstance(source, Mapping):
                yield source


def needs_azure_devops(spec: Mapping[str, Any]) -> bool:
    """Whether the run (its spec, or any of its tasks) checks out an Azure DevOps repository."""
    return any(
        isinstance(source.get("git_provider"), str)
        and same_provider(source["git_provider"], AZURE_DEVOPS)
        for source in _git_sources(spec)
    )


def can_keep(kind: str | None) -> bool:
    """Whether an identity of ``kind`` can ask Entra ID for an Azure DevOps token."""
    return kind in ENTRA_KINDS


def refresh_ahead(lifetime: float) -> float:
    """How long before its expiry a token is replaced: half its life, at most 20 minutes."""
    return min(max(lifetime, 0.0) / 2, MAX_REFRESH_AHEAD_SECONDS)


def not_azure_message(namespace: str, kind: str | None, origin: str | None) -> str:
    """Why ``git_credentials: entra`` cannot act for the namespace, and what to do."""
    what = f"a {kind} identity" if kind else "no identity of its own"
    where = f" (from {origin})" if origin else ""
    return (
        f"namespace '{namespace}': git_credentials: entra needs an Azure service principal "
        f"(azure-client-secret or azure-workload-identity), but the namespace has {what}"
        f"{where}; an Entra ID token for Azure DevOps can only be asked with an Entra "
        "identity. Give the namespace an Azure identity in its tenant policy, or set "
        "git_credentials: off and keep a Git credential in Databricks yourself"
    )
