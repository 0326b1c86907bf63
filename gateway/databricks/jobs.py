"""The Databricks Jobs API: one-time runs submitted, read, listed and cancelled.

One ``JobsClient`` serves every namespace: the workspace and the credential come with each
call. The client is handed its ``aiohttp.ClientSession`` (the app owns it and closes it), so it
never opens one. Its calls go through ``calls.WorkspaceCalls`` (retries, budgets, the host's
concurrency cap, and the one place aiohttp's exceptions become ``gateway.errors``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp

from gateway.databricks import wire
from gateway.databricks.auth import TokenProvider
from gateway.databricks.budgets import RequestBudgets
from gateway.databricks.calls import (
    AZURE_MANAGEMENT_TOKEN_HEADER,
    AZURE_RESOURCE_ID_HEADER,
    USER_AGENT,
    OnCall,
    Workspace,
    WorkspaceCalls,
    azure_headers,
    request_timeout,
)
from gateway.databricks.retries import RetryPolicy
from gateway.databricks.wire import RunSnapshot, RunsPage
from gateway.errors import DatabricksError
from gateway.settings import DatabricksSettings

# What callers have long imported from here; the call machinery lives in ``calls``.
__all__ = [
    "AZURE_MANAGEMENT_TOKEN_HEADER",
    "AZURE_RESOURCE_ID_HEADER",
    "MAX_LIST_LIMIT",
    "USER_AGENT",
    "JobsClient",
    "OnCall",
    "Workspace",
    "azure_headers",
]

MAX_LIST_LIMIT = 25


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
        self._calls = WorkspaceCalls(
            session,
            retry=retry,
            timeout=timeout,
            on_call=on_call,
            user_agent=user_agent,
            budgets=budgets,
        )

    @classmethod
    def from_settings(
        cls,
        session: aiohttp.ClientSession,
        settings: DatabricksSettings,
        *,
        on_call: OnCall | None = None,
        budgets: RequestBudgets | None = None,
    ) -> JobsClient:
        retry = RetryPolicy.from_settings(settings)
        timeout = request_timeout(settings)
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
        return await self._calls.call(
            ws, cred, method, ws.jobs_url(endpoint), endpoint, params=params, body=body
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
