"""Typed application and request keys: what the API needs from the composition root.

The composition root sets the application keys in a ``cleanup_ctx`` before the server accepts
requests; handlers read them with ``request.config_dict[KEY]`` so the API also works mounted as
a sub-application.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from gateway.metrics import Metrics
from gateway.runs.types import RunService
from gateway.settings import Settings

# Each readiness check answers (ok, detail); the detail is shown to whoever probes /readyz, so
# it must say what is wrong without naming a secret.
ReadinessReport = Mapping[str, tuple[bool, str]]
Readiness = Callable[[], Awaitable[ReadinessReport]]

SERVICE = web.AppKey("lakegate.service", RunService)
METRICS = web.AppKey("lakegate.metrics", Metrics)
READINESS: web.AppKey[Readiness] = web.AppKey("lakegate.readiness")
SETTINGS = web.AppKey("lakegate.settings", Settings)

REQUEST_ID = web.RequestKey("lakegate.request_id", str)
# The problem type slug of an error response, so the access log can say what went wrong
# without logging the body.
PROBLEM = web.RequestKey("lakegate.problem", str)
