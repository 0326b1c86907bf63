"""The only code that speaks HTTP to the Databricks Git Credentials API (reference §7).

    GET    /api/2.0/git-credentials                  the caller's credentials (never a token)
    POST   /api/2.0/git-credentials                  create one
    PATCH  /api/2.0/git-credentials/{credential_id}  replace its fields, token included
    DELETE /api/2.0/git-credentials/{credential_id}

Every call is made as the principal a credential belongs to (the caller's own credentials:
no ``principal_id``), with that principal's Databricks token (and, for an Entra principal of
a workspace with ``azure_resource_id``, its management headers), through the same
``calls.WorkspaceCalls`` as Jobs calls: a 401 drops exactly the refused token and is tried
once more, 429 and 5xx back off, and aiohttp's exceptions become ``gateway.errors``.

Databricks allows a service principal one credential per provider; a second create is
refused (409 ``RESOURCE_ALREADY_EXISTS``, "Only one credential per provider is allowed",
earlier "Only one Git credential is supported ... at this time" as a 400), which
``already_exists`` recognises so the caller can update instead. The token sent is
registered with ``secrets_registry`` first, so an upstream error that echoes it is masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.databricks.auth import TokenProvider
from gateway.databricks.calls import OnCall, Workspace, WorkspaceCalls, request_timeout
from gateway.databricks.retries import RetryPolicy
from gateway.errors import DatabricksError
from gateway.secrets_registry import remember
from gateway.settings import DatabricksSettings

PATH = "/api/2.0/git-credentials"
# The provider Azure DevOps Services (Entra ID authentication included) is known by.
AZURE_DEVOPS = "azureDevOpsServices"
_ONE_PER_PROVIDER = ("only one credential per provider", "only one git credential is supported")


@dataclass(frozen=True, slots=True)
class GitCredential:
    """One Git credential as Databricks lists it: never with its token."""

    credential_id: int
    git_provider: str
    git_username: str | None = None


def already_exists(exc: DatabricksError) -> bool:
    """Whether a create was refused because the principal holds one for the provider."""
    if exc.http_status == 409 or exc.error_code in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
        return True
    return exc.http_status == 400 and any(s in exc.message.lower() for s in _ONE_PER_PROVIDER)


def parse_credential(obj: object) -> GitCredential:
    if not isinstance(obj, Mapping):
        raise DatabricksError(f"Databricks git-credentials sent a credential that is {obj!r}")
    raw_id, provider = obj.get("credential_id"), obj.get("git_provider")
    if isinstance(raw_id, str) and raw_id.isdigit():
        raw_id = int(raw_id)
    if not isinstance(raw_id, int) or isinstance(raw_id, bool) or not isinstance(provider, str):
        raise DatabricksError("Databricks git-credentials sent a credential without id/provider")
    username = obj.get("git_username")
    return GitCredential(raw_id, provider, username if isinstance(username, str) else None)


def parse_list(payload: Mapping[str, Any]) -> list[GitCredential]:
    # "credentials" is left out when there are none.
    items = payload.get("credentials") or []
    if not isinstance(items, list):
        raise DatabricksError("Databricks git-credentials list sent 'credentials' not a list")
    return [parse_credential(item) for item in items]


def same_provider(a: str, b: str) -> bool:
    """Providers are case-insensitive (Databricks accepts any spelling)."""
    return a.casefold() == b.casefold()


class GitCredentialsClient:
    """List, create, update and delete a principal's own Git credentials."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        retry: RetryPolicy,
        timeout: aiohttp.ClientTimeout,
        on_call: OnCall | None = None,
    ) -> None:
        self._calls = WorkspaceCalls(session, retry=retry, timeout=timeout, on_call=on_call)

    @classmethod
    def from_settings(
        cls,
        session: aiohttp.ClientSession,
        settings: DatabricksSettings,
        *,
        on_call: OnCall | None = None,
    ) -> GitCredentialsClient:
        retry = RetryPolicy.from_settings(settings)
        return cls(session, retry=retry, timeout=request_timeout(settings), on_call=on_call)

    async def list(self, ws: Workspace, cred: TokenProvider) -> list[GitCredential]:
        return parse_list(await self._call(ws, cred, "GET", "", "git-credentials/list"))

    async def create(
        self,
        ws: Workspace,
        cred: TokenProvider,
        *,
        git_provider: str,
        git_username: str,
        token: str,
    ) -> GitCredential:
        body = _body(git_provider, git_username, token)
        return parse_credential(
            await self._call(ws, cred, "POST", "", "git-credentials/create", body)
        )

    async def update(
        self,
        ws: Workspace,
        cred: TokenProvider,
        credential_id: int,
        *,
        git_provider: str,
        git_username: str,
        token: str,
    ) -> None:
        body = _body(git_provider, git_username, token)
        await self._call(ws, cred, "PATCH", f"/{credential_id}", "git-credentials/update", body)

    async def delete(self, ws: Workspace, cred: TokenProvider, credential_id: int) -> None:
        await self._call(ws, cred, "DELETE", f"/{credential_id}", "git-credentials/delete")

    async def _call(
        self,
        ws: Workspace,
        cred: TokenProvider,
        method: str,
        suffix: str,
        endpoint: str,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = f"{ws.host.rstrip('/')}{PATH}{suffix}"
        return await self._calls.call(ws, cred, method, url, endpoint, body=body)


def _body(git_provider: str, git_username: str, token: str) -> dict[str, str]:
    remember(token)
    return {
        "git_provider": git_provider,
        "git_username": git_username,
        "personal_access_token": token,
    }
