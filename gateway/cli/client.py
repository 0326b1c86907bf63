"""An async client of lakegate's REST API (/v1), for the CLI, end-to-end tests and benchmarks.

The client uses one ``aiohttp.ClientSession``: either handed in (the caller owns and closes
it) or opened by ``async with LakegateClient(...)`` (the client owns it). Every call is retried
on connection failures, 5xx and 429 under one declared tenacity policy that honours
Retry-After. Retrying a submit is safe because every submit carries an Idempotency-Key, the
same on every attempt: a retry can replay the run the gateway already accepted, never create a
second one (the policy is ``gateway.cli.retry``).

aiohttp's exceptions are translated here and nowhere else, into the tree of
``gateway.cli.errors``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Required, Self, TypedDict, cast
from urllib.parse import quote

import aiohttp
import yarl
from multidict import CIMultiDictProxy
from tenacity import RetryCallState

from gateway import logs
from gateway.cli.errors import ApiError, GatewayUnreachable, UnexpectedResponse
from gateway.cli.retry import ClientRetry, RetryNotice, notice, retry_after_seconds
from gateway.model import TERMINAL_STATES

DEFAULT_URL = "http://127.0.0.1:8080"

_TERMINAL = frozenset(state.value for state in TERMINAL_STATES)

_log = logs.get_logger(__name__)


def normalize_url(url: str) -> str:
    """The gateway's base URL without a trailing slash; ValueError unless http(s)://host."""
    parsed = yarl.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"gateway URL must look like http(s)://host[:port], not {url!r}")
    return str(parsed).rstrip("/")


def is_terminal(state: str) -> bool:
    """Whether a run in ``state`` has ended for good."""
    return state in _TERMINAL


HistoryEntry = TypedDict(
    "HistoryEntry", {"from": str | None, "to": str, "at": str, "message": str | None}, total=False
)


class Run(TypedDict, total=False):
    """A run as the API returns it; ``history`` only from ``get``."""

    id: Required[int | str]
    state: Required[str]
    namespace: str
    databricks_run_id: int | None
    run_page_url: str | None
    state_message: str | None
    created_at: str
    updated_at: str
    labels: dict[str, str]
    callback_url: str | None
    cancel_requested: bool
    history: list[HistoryEntry]


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submit's answer: 201 submitted, 202 accepted (queued), 200 an idempotent replay."""

    run: Run
    status: int
    idempotency_key: str

    @property
    def replayed(self) -> bool:
        return self.status == 200


@dataclass(frozen=True, slots=True)
class RunListPage:
    """One page of ``list_runs``; ``next_cursor`` is None on the last."""

    runs: list[Run]
    next_cursor: str | None


# --- the client -----------------------------------------------------------------------------


class LakegateClient:
    """Submit, read, list, cancel and follow runs through lakegate's REST API."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        retry: ClientRetry | None = None,
        on_retry: Callable[[RetryNotice], None] | None = None,
    ) -> None:
        self.base_url = normalize_url(base_url)
        self._token = token
        self._session = session
        self._owns_session = False
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retry = retry or ClientRetry()
        self._on_retry = on_retry

    def __repr__(self) -> str:
        # The token stays out of reprs, tracebacks and debugger output.
        return f"LakegateClient({self.base_url!r}, token={'set' if self._token else None})"

    async def __aenter__(self) -> Self:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
            self._owns_session = False

    # --- the API ----------------------------------------------------------------------------

    async def submit(
        self,
        namespace: str,
        spec: Mapping[str, Any],
        *,
        labels: Mapping[str, str] | None = None,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> Submitted:
        """Submit a Databricks runs/submit payload as a run of ``namespace``."""
        body: dict[str, Any] = {"spec": dict(spec)}
        if labels:
            body["labels"] = dict(labels)
        if callback_url:
            body["callback_url"] = callback_url
        return await self.submit_body(namespace, body, idempotency_key=idempotency_key)

    async def submit_body(
        self, namespace: str, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Submitted:
        """POST a full ``{"spec": ..., ...}`` body; a missing key is generated, never omitted."""
        key = idempotency_key or str(uuid.uuid4())
        status, data = await self._call(
            "POST",
            _runs_path(namespace),
            json_body=dict(body),
            headers={"Idempotency-Key": key},
        )
        return Submitted(run=_as_run(data), status=status, idempotency_key=key)

    async def get(self, namespace: str, run_id: int | str) -> Run:
        """The run with its history of state transitions."""
        _, data = await self._call("GET", _run_path(namespace, run_id))
        return _as_run(data)

    async def output(self, namespace: str, run_id: int | str) -> dict[str, Any]:
        """What each task of the run left: result, logs, error and error trace."""
        _, data = await self._call("GET", f"{_run_path(namespace, run_id)}/output")
        if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
            raise UnexpectedResponse("the output answer has no 'tasks' array")
        return data

    async def quota(self, namespace: str) -> dict[str, Any]:
        """The namespace's limits, usage, queue and pause state."""
        _, data = await self._call("GET", f"/v1/namespaces/{quote(namespace, safe='')}/quota")
        return dict(data) if isinstance(data, dict) else {}

    async def cancel(self, namespace: str, run_id: int | str) -> Run:
        """Ask for the run to be cancelled; it ends CANCELED later, unless it ends first."""
        _, data = await self._call("POST", f"{_run_path(namespace, run_id)}/cancel")
        return _as_run(data)

    async def list_runs(
        self,
        namespace: str,
        *,
        states: Iterable[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> RunListPage:
        """One page of the namespace's runs; several states are sent as repeated ``state``."""
        params: list[tuple[str, str]] = [("state", s) for s in states or ()]
        if limit is not None:
            params.append(("limit", str(limit)))
        if cursor:
            params.append(("cursor", cursor))
        _, data = await self._call("GET", _runs_path(namespace), params=params)
        runs = data.get("runs") if isinstance(data, dict) else None
        if not isinstance(runs, list):
            raise UnexpectedResponse("the run list has no 'runs' array")
        next_cursor = data.get("next_cursor")
        return RunListPage(
            runs=[_as_run(run) for run in runs],
            next_cursor=str(next_cursor) if next_cursor else None,
        )

    async def iter_runs(
        self, namespace: str, *, states: Iterable[str] | None = None, page_size: int | None = None
    ) -> AsyncIterator[Run]:
        """Every run of the namespace, following ``next_cursor`` page after page."""
        wanted = list(states or ())
        cursor: str | None = None
        while True:
            page = await self.list_runs(namespace, states=wanted, limit=page_size, cursor=cursor)
            for run in page.runs:
                yield run
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def watch(
        self, namespace: str, run_id: int | str, *, poll_interval: float = 2.0
    ) -> AsyncIterator[Run]:
        """The run as each poll finds it, ending with the first terminal state."""
        while True:
            run = await self.get(namespace, run_id)
            yield run
            if is_terminal(run["state"]):
                return
            await asyncio.sleep(poll_interval)

    async def wait(self, namespace: str, run_id: int | str, *, poll_interval: float = 2.0) -> Run:
        """Poll until the run ends and return it; bound it with ``asyncio.timeout``."""
        final: Run | None = None
        # Drained to its end rather than left at a yield, so the generator finishes here.
        async for run in self.watch(namespace, run_id, poll_interval=poll_interval):
            final = run
        assert final is not None, "watch() yields at least once"
        return final

    async def dead_webhooks(
        self, namespace: str, *, limit: int | None = None, before: int | None = None
    ) -> dict[str, Any]:
        """One page of the namespace's dead webhook events, newest first."""
        params = [("limit", str(limit))] if limit is not None else []
        if before is not None:
            params.append(("before", str(before)))
        _, data = await self._call("GET", _webhooks_path(namespace, "dead"), params=params)
        if not isinstance(data, dict) or not isinstance(data.get("events"), list):
            raise UnexpectedResponse("the dead list has no 'events' array")
        return data

    async def redeliver_webhooks(self, namespace: str, ids: list[int] | None) -> list[int]:
        """Send dead events again (``ids``, or all when None); the ids made due."""
        body: dict[str, Any] = {"all": True} if ids is None else {"ids": ids}
        _, data = await self._call("POST", _webhooks_path(namespace, "redeliver"), json_body=body)
        done = data.get("redelivered") if isinstance(data, dict) else None
        if not isinstance(done, list):
            raise UnexpectedResponse("the redelivery answer has no 'redelivered' array")
        return [int(i) for i in done]

    async def identity_report(self, namespace: str) -> dict[str, Any]:
        """The tenant doctor's report of the namespace (GET .../identity)."""
        _, data = await self._call("GET", f"/v1/namespaces/{quote(namespace, safe='')}/identity")
        if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
            raise UnexpectedResponse("the doctor's report has no 'steps' array")
        return data

    async def namespaces(self) -> list[dict[str, Any]]:
        """Every namespace the caller may act for, with its identity kind and state."""
        _, data = await self._call("GET", "/v1/namespaces")
        found = data.get("namespaces") if isinstance(data, dict) else None
        if not isinstance(found, list):
            raise UnexpectedResponse("the namespace list has no 'namespaces' array")
        return found

    # --- HTTP -------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: list[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        retrying = self._retry.retrying(lambda state: self._before_sleep(method, path, state))
        async for attempt in retrying:
            with attempt:
                return await self._once(method, path, json_body, params, headers)
        raise AssertionError("tenacity stopped without a result or an error")  # pragma: no cover

    def _before_sleep(self, method: str, path: str, state: RetryCallState) -> None:
        told = notice(method, path, state)
        if self._on_retry is not None:
            self._on_retry(told)
        else:
            _log.info(
                "client_retry",
                method=method,
                path=path,
                attempt=told.attempt,
                wait=told.wait,
                error=str(told.error),
            )

    async def _once(
        self,
        method: str,
        path: str,
        json_body: Mapping[str, Any] | None,
        params: list[tuple[str, str]] | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[int, Any]:
        if self._session is None:
            raise RuntimeError("LakegateClient needs a session: pass one or use 'async with'")
        url = yarl.URL(self.base_url + path, encoded=True)
        send = {"Accept": "application/json, application/problem+json", **(headers or {})}
        if self._token:
            send["Authorization"] = f"Bearer {self._token}"
        try:
            async with self._session.request(
                method, url, json=json_body, params=params, headers=send, timeout=self._timeout
            ) as response:
                raw = await response.read()
                status, received = response.status, response.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._unreachable(method, path, exc) from exc
        if status >= 400:
            raise _problem(status, received, raw)
        try:
            return status, json.loads(raw)
        except ValueError as exc:
            raise UnexpectedResponse(
                f"{method} {path} answered {status} without JSON; is {self.base_url} lakegate?"
            ) from exc

    def _unreachable(self, method: str, path: str, exc: BaseException) -> GatewayUnreachable:
        refused = False
        if isinstance(exc, aiohttp.ClientSSLError):
            reason = f"TLS failed: {exc}"
        elif isinstance(exc, aiohttp.ClientConnectorError):
            refused = True
            reason = f"cannot connect to {self.base_url}: {exc.os_error.strerror or exc.os_error}"
        elif isinstance(exc, TimeoutError):
            reason = f"no answer within {self._timeout.total}s"
        else:
            reason = str(exc) or type(exc).__name__
        return GatewayUnreachable(
            f"{method} {path}: {reason}", url=self.base_url, connect_failed=refused
        )


def _runs_path(namespace: str) -> str:
    return f"/v1/namespaces/{quote(namespace, safe='')}/runs"


def _run_path(namespace: str, run_id: int | str) -> str:
    return f"{_runs_path(namespace)}/{quote(str(run_id), safe='')}"


def _as_run(data: Any) -> Run:
    if not isinstance(data, dict) or "id" not in data or "state" not in data:
        raise UnexpectedResponse("the answer is not a run (no 'id' and 'state')")
    return cast(Run, data)


def _problem(status: int, headers: CIMultiDictProxy[str], raw: bytes) -> ApiError:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        # A proxy or load balancer answered, not lakegate: keep what it said, briefly.
        body = {"detail": raw.decode("utf-8", errors="replace").strip()[:300] or None}
    if not body.get("request_id"):
        body["request_id"] = headers.get("X-Request-Id")
    return ApiError(status, body, retry_after=retry_after_seconds(headers.get("Retry-After")))


def _webhooks_path(namespace: str, leaf: str) -> str:
    return f"/v1/namespaces/{quote(namespace, safe='')}/webhooks/{leaf}"
