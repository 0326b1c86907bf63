"""The only code that speaks HTTP to the Databricks Jobs API.

One ``JobsClient`` serves every namespace: the workspace and the credential come with each
call. The client is handed its ``aiohttp.ClientSession`` (the app owns it and closes it), so it
never opens one. Every aiohttp exception is translated into ``gateway.errors`` here and only
here; callers see ``DatabricksError`` subclasses, or the credential's own ``IdentityError``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway import __version__
from gateway.databricks import wire
from gateway.databricks.auth import AzureManagementTokens, TokenProvider
from gateway.databricks.budgets import RequestBudgets
from gateway.databricks.retries import RetryPolicy
from gateway.databricks.wire import RunSnapshot, RunsPage
from gateway.errors import DatabricksAuthError, DatabricksError, DatabricksUnavailable
from gateway.logs import get_logger
from gateway.settings import DatabricksSettings, WorkspaceSettings

log = get_logger(__name__)

USER_AGENT = f"lakegate/{__version__}"
MAX_LIST_LIMIT = 25

# (endpoint, outcome, seconds); outcome is the HTTP status, "timeout", "transport_error",
# "invalid_request" (the request could not be built) or "cancelled" (the caller gave up).
OnCall = Callable[[str, str, float], None]


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


AZURE_MANAGEMENT_TOKEN_HEADER = "X-Databricks-Azure-SP-Management-Token"  # noqa: S105 (a name)
AZURE_RESOURCE_ID_HEADER = "X-Databricks-Azure-Workspace-Resource-Id"


async def azure_headers(ws: Workspace, cred: TokenProvider) -> dict[str, str]:
    """What an Entra service principal adds to a Jobs call when the workspace's resource id
    is configured (as the SDK and Airflow do): a management token and the resource id, which
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


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    text: str


class JobsClient:
    """Async client for one-time runs: submit, get, cancel, list, get-output."""

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
        self._budgets = budgets
        self._retry = retry
        self._timeout = timeout
        self._on_call = on_call
        self._user_agent = user_agent
        # One cap per host, shared by every namespace that uses the workspace.
        self._slots: dict[str, asyncio.Semaphore] = {}

    @classmethod
    def from_settings(
        cls,
        session: aiohttp.ClientSession,
        settings: DatabricksSettings,
        *,
        on_call: OnCall | None = None,
        budgets: RequestBudgets | None = None,
    ) -> JobsClient:
        timeout = aiohttp.ClientTimeout(
            total=settings.request_timeout_seconds,
            sock_connect=settings.connect_timeout_seconds,
        )
        retry = RetryPolicy.from_settings(settings)
        return cls(session, retry=retry, timeout=timeout, on_call=on_call, budgets=budgets)

    # --- the Jobs API ---------------------------------------------------------------------------

    async def submit(
        self,
        ws: Workspace,
        cred: TokenProvider,
        spec: Mapping[str, Any],
        *,
        idempotency_token: str,
    ) -> int:
        """Submit a one-time run; the same token always yields the same Databricks run id."""
        body = wire.submit_body(spec, idempotency_token)
        payload = await self._call(ws, cred, "POST", "runs/submit", body=body)
        return wire.parse_submit(payload)

    async def get(self, ws: Workspace, cred: TokenProvider, run_id: int) -> RunSnapshot:
        payload = await self._call(ws, cred, "GET", "runs/get", params={"run_id": str(run_id)})
        return wire.parse_run(payload)

    async def get_payload(
        self,
        ws: Workspace,
        cred: TokenProvider,
        run_id: int,
        *,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """runs/get as Databricks sends it, for callers that pass the run on whole (the
        Databricks-compatible facade); ``params`` adds page_token and the like."""
        query = {**(params or {}), "run_id": str(run_id)}
        return await self._call(ws, cred, "GET", "runs/get", params=query)

    async def cancel(self, ws: Workspace, cred: TokenProvider, run_id: int) -> None:
        """Ask Databricks to cancel; the run ends later, through TERMINATING."""
        await self._call(ws, cred, "POST", "runs/cancel", body={"run_id": run_id})

    async def get_output(self, ws: Workspace, cred: TokenProvider, run_id: int) -> dict[str, Any]:
        """runs/get-output as Databricks sends it; ``run_id`` is a task run id."""
        return await self._call(ws, cred, "GET", "runs/get-output", params={"run_id": str(run_id)})

    async def list(
        self,
        ws: Workspace,
        cred: TokenProvider,
        *,
        active_only: bool = False,
        completed_only: bool = False,
        run_type: str | None = None,
        limit: int = MAX_LIST_LIMIT,
        page_token: str | None = None,
        start_time_from: int | None = None,
    ) -> RunsPage:
        """One page of runs/list, newest first; ``start_time_from`` is epoch ms."""
        params = _list_params(
            active_only=active_only,
            completed_only=completed_only,
            run_type=run_type,
            limit=limit,
            page_token=page_token,
            start_time_from=start_time_from,
        )
        payload = await self._call(ws, cred, "GET", "runs/list", params=params)
        return wire.parse_runs_page(payload)

    async def list_all(
        self,
        ws: Workspace,
        cred: TokenProvider,
        *,
        active_only: bool = False,
        completed_only: bool = False,
        run_type: str | None = None,
        start_time_from: int | None = None,
        page_size: int = MAX_LIST_LIMIT,
    ) -> AsyncGenerator[RunSnapshot, None]:
        """Every run runs/list yields, following ``next_page_token`` page after page; a caller
        that has what it needs stops early (``aclose``) and no further page is asked for."""
        page_token: str | None = None
        while True:
            page = await self.list(
                ws,
                cred,
                active_only=active_only,
                completed_only=completed_only,
                run_type=run_type,
                limit=page_size,
                page_token=page_token,
                start_time_from=start_time_from,
            )
            for run in page.runs:
                yield run
            if not page.next_page_token:
                return
            if page.next_page_token == page_token:
                # A server that repeats its token would keep the poller here forever.
                raise DatabricksError("Databricks runs/list returned the same page token twice")
            page_token = page.next_page_token

    # --- one call, several attempts ---------------------------------------------------------

    async def _call(
        self,
        ws: Workspace,
        cred: TokenProvider,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        if endpoint == "runs/submit":
            # The retry policy may send this POST again after it took effect; only the token
            # makes that safe, so a submission without one must never get this far.
            assert body is not None
            assert body.get("idempotency_token"), "runs/submit without an idempotency_token"
        retrying = self._retry.jobs(endpoint)
        result: dict[str, Any] = await retrying(
            self._attempt, ws, cred, method, endpoint, params, body
        )
        return result

    async def _attempt(
        self,
        ws: Workspace,
        cred: TokenProvider,
        method: str,
        endpoint: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        token = await cred.token()
        extra = await azure_headers(ws, cred)
        answer = await self._send(ws, token, method, endpoint, params, body, extra)
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
        token: str,
        method: str,
        endpoint: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        extra: Mapping[str, str],
    ) -> _Answer:
        headers = {
            **extra,
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": self._user_agent,
        }
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        if self._budgets is not None:  # every attempt counts against the workspace's budget
            await self._budgets.turn(ws.host, endpoint)
        async with self._slot(ws):
            outcome = "transport_error"
            started = time.monotonic()
            try:
                async with self._session.request(
                    method,
                    ws.jobs_url(endpoint),
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


def _list_params(
    *,
    active_only: bool,
    completed_only: bool,
    run_type: str | None,
    limit: int,
    page_token: str | None,
    start_time_from: int | None,
) -> dict[str, str]:
    if active_only and completed_only:
        raise ValueError("runs/list takes active_only or completed_only, not both")
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValueError(f"runs/list limit must be between 1 and {MAX_LIST_LIMIT}")
    params = {"limit": str(limit)}
    if active_only:
        params["active_only"] = "true"
    if completed_only:
        params["completed_only"] = "true"
    if run_type:
        params["run_type"] = run_type
    if page_token:
        params["page_token"] = page_token
    if start_time_from is not None:
        params["start_time_from"] = str(start_time_from)
    return params
