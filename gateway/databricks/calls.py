"""One authenticated call to a workspace's REST API, retried: what the Jobs client and the
Git Credentials client share.

A call is tried under the retry policy (``RetryPolicy.jobs``: a 401 drops exactly the refused
token and is tried once more, 429 and 5xx back off). Each attempt takes the credential's
token (and, for an Entra principal of a workspace with ``azure_resource_id``, its management
headers), waits for the endpoint's request budget on the host, if any, and for one of the
host's ``max_concurrent_requests`` slots, which every namespace on the workspace shares.
Every aiohttp exception is translated into ``gateway.errors`` here and only here; callers see
``DatabricksError`` subclasses, or the credential's own ``IdentityError``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway import __version__, jsonexact
from gateway.databricks import wire
from gateway.databricks.auth import AzureManagementTokens, TokenProvider
from gateway.databricks.budgets import RequestBudgets
from gateway.databricks.retries import RetryPolicy
from gateway.errors import DatabricksAuthError, DatabricksError, DatabricksUnavailable
from gateway.logs import get_logger
from gateway.settings import DatabricksSettings, WorkspaceSettings

log = get_logger(__name__)

USER_AGENT = f"lakegate/{__version__}"

# (endpoint, outcome, seconds); outcome is the HTTP status, "timeout", "transport_error",
# "invalid_request" (the request could not be built) or "cancelled" (the caller gave up).
OnCall = Callable[[str, str, float], None]

AZURE_MANAGEMENT_TOKEN_HEADER = "X-Databricks-Azure-SP-Management-Token"  # noqa: S105 (a name)
AZURE_RESOURCE_ID_HEADER = "X-Databricks-Azure-Workspace-Resource-Id"


@dataclass(frozen=True, slots=True)
class Workspace:
    """Where calls go: a workspace host (``scheme://netloc``) and its API version."""

    host: str
    api_version: str = "2.2"
    max_concurrent_requests: int = 32
    # Azure: the workspace's ARM resource id, sent with an Entra principal's management token.
    azure_resource_id: str | None = None

    def __post_init__(self) -> None:
        if self.api_version not in ("2.1", "2.2"):
            raise ValueError(f"Jobs API version {self.api_version!r} is not 2.1 or 2.2")
        if self.max_concurrent_requests < 1:
            raise ValueError("max_concurrent_requests must be at least 1")

    @classmethod
    def from_settings(cls, settings: WorkspaceSettings) -> Workspace:
        return cls(
            settings.host,
            settings.api_version,
            settings.max_concurrent_requests,
            settings.azure_resource_id,
        )

    def jobs_url(self, endpoint: str) -> str:
        return f"{self.host.rstrip('/')}/api/{self.api_version}/jobs/{endpoint}"


async def azure_headers(ws: Workspace, cred: TokenProvider) -> dict[str, str]:
    """What an Entra service principal adds to a call when the workspace's resource id is
    configured (as the SDK and Airflow do): a management token and the resource id, which
    admit a principal with a role on the workspace resource that is not yet a user there."""
    if ws.azure_resource_id is None or not isinstance(cred, AzureManagementTokens):
        return {}
    management = await cred.azure_management_token()
    if management is None:
        return {}
    return {
        AZURE_MANAGEMENT_TOKEN_HEADER: management,
        AZURE_RESOURCE_ID_HEADER: ws.azure_resource_id,
    }


def request_timeout(settings: DatabricksSettings) -> aiohttp.ClientTimeout:
    """One attempt's time limits, as the settings give them: the whole attempt, and the
    connection within it."""
    return aiohttp.ClientTimeout(
        total=settings.request_timeout_seconds, sock_connect=settings.connect_timeout_seconds
    )


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    text: str


class WorkspaceCalls:
    """Authenticated, retried, budgeted calls to workspaces, on a session the app owns."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        retry: RetryPolicy,
        timeout: aiohttp.ClientTimeout,
        on_call: OnCall | None = None,
        user_agent: str = USER_AGENT,
        budgets: RequestBudgets | None = None,
    ) -> None:
        self._session = session
        self._retry = retry
        self._timeout = timeout
        self._on_call = on_call
        self._user_agent = user_agent
        self._budgets = budgets
        # One cap per host, shared by every namespace that uses the workspace.
        self._slots: dict[str, asyncio.Semaphore] = {}

    async def call(
        self,
        ws: Workspace,
        cred: TokenProvider,
        method: str,
        url: str,
        endpoint: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The JSON object ``method url`` answers (``{}`` for an empty body), as ``cred``'s
        principal; ``endpoint`` names the call in retries, budgets, errors and metrics."""
        return await self._retry.run_jobs(
            endpoint, lambda: self._attempt(ws, cred, method, url, endpoint, params, body)
        )

    async def _attempt(
        self,
        ws: Workspace,
        cred: TokenProvider,
        method: str,
        url: str,
        endpoint: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        token = await cred.token()
        headers = {
            **await azure_headers(ws, cred),
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": self._user_agent,
        }
        answer = await self._send(ws, method, url, endpoint, headers, params, body)
        # Redirects are not followed (a bearer token must not travel to another URL), so a
        # 3xx is an error like a 4xx.
        if not 200 <= answer.status < 300:
            error = wire.error_from_response(
                answer.status, answer.headers, answer.text, endpoint=endpoint
            )
            if isinstance(error, DatabricksAuthError):
                # Drop exactly this token; the retry then fetches a fresh one.
                cred.invalidate(token)
                log.warning(
                    "databricks_token_refused",
                    host=ws.host,
                    endpoint=endpoint,
                    http_status=answer.status,
                )
            raise error
        return wire.parse_json(answer.text, endpoint=endpoint)

    async def _send(
        self,
        ws: Workspace,
        method: str,
        url: str,
        endpoint: str,
        headers: dict[str, str],
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
    ) -> _Answer:
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = jsonexact.dumps(body).encode("utf-8")
        if self._budgets is not None:  # every attempt counts against the workspace's budget
            await self._budgets.turn(ws.host, endpoint)
        async with self._slot(ws):
            outcome = "transport_error"
            started = time.monotonic()
            try:
                async with self._session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as resp:
                    raw = await resp.read()
                    answer = _Answer(resp.status, resp.headers, raw.decode("utf-8", "replace"))
                outcome = str(answer.status)
            except asyncio.CancelledError:
                outcome = "cancelled"
                raise
            except Exception as exc:
                outcome, error = _translated(exc, endpoint, ws.host)
                raise error from exc
            finally:
                seconds = time.monotonic() - started
                log.debug(
                    "databricks_call",
                    host=ws.host,
                    endpoint=endpoint,
                    outcome=outcome,
                    seconds=round(seconds, 4),
                )
                if self._on_call is not None:
                    self._on_call(endpoint, outcome, seconds)
        return answer

    def _slot(self, ws: Workspace) -> asyncio.Semaphore:
        slot = self._slots.get(ws.host)
        if slot is None:
            slot = self._slots[ws.host] = asyncio.Semaphore(ws.max_concurrent_requests)
        return slot


def _translated(exc: Exception, endpoint: str, host: str) -> tuple[str, DatabricksError]:
    """The outcome label and our error for whatever a call raised: nothing foreign leaves."""
    if isinstance(exc, TimeoutError):
        return "timeout", DatabricksUnavailable(f"Databricks {endpoint} timed out on {host}")
    if isinstance(exc, aiohttp.InvalidURL):
        return "transport_error", DatabricksError(f"Databricks {endpoint}: invalid URL {exc}")
    if isinstance(exc, aiohttp.ClientError):
        return "transport_error", DatabricksUnavailable(
            f"Databricks {endpoint} on {host}: {type(exc).__name__}: {exc}"
        )
    # aiohttp refuses to build some requests with a ValueError (a header holding a line
    # break), a closed session with a RuntimeError. The message names the class only: its
    # text may quote the header, that is the credential.
    return "invalid_request", DatabricksError(
        f"Databricks {endpoint}: the request to {host} could not be sent ({type(exc).__name__})"
    )
