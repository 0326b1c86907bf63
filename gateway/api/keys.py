"""Typed application and request keys: what the API needs from the composition root.

The composition root sets the application keys in a ``cleanup_ctx`` before the server accepts
requests; handlers read them with ``request.config_dict[KEY]`` so the API also works mounted as
a sub-application.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from gateway.api.callers_gate import CallerGate
from gateway.api.callers_types import Caller
from gateway.metrics import Metrics
from gateway.model import RunRecord
from gateway.runs.types import RunService
from gateway.settings import Settings

# Each readiness check answers (ok, detail); the detail is shown to whoever probes /readyz, so
# it must say what is wrong without naming a secret.
ReadinessReport = Mapping[str, tuple[bool, str]]
Readiness = Callable[[], Awaitable[ReadinessReport]]


class RemoteRuns(Protocol):
    """What the Databricks-compatible facade reads from Databricks, as Databricks sends it."""

    async def remote_run(
        self, run: RunRecord, *, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]: ...

    async def remote_output(
        self, namespace: str, task_run_id: int, *, run: RunRecord | None = None
    ) -> dict[str, Any]: ...


SERVICE = web.AppKey("lakegate.service", RunService)
REMOTE_RUNS: web.AppKey[RemoteRuns] = web.AppKey("lakegate.remote_runs")
METRICS = web.AppKey("lakegate.metrics", Metrics)
READINESS: web.AppKey[Readiness] = web.AppKey("lakegate.readiness")
SETTINGS = web.AppKey("lakegate.settings", Settings)
# Who may call: the configured authentication methods and grants (see gateway.api.callers).
CALLERS = web.AppKey("lakegate.callers", CallerGate)

REQUEST_ID = web.RequestKey("lakegate.request_id", str)
# The problem type slug of an error response, so the access log can say what went wrong
# without logging the body.
PROBLEM = web.RequestKey("lakegate.problem", str)
# The authenticated caller, set by the caller middleware when a credential was accepted.
CALLER = web.RequestKey("lakegate.caller", Caller)
