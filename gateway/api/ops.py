"""Operational endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
from importlib.resources import files
from typing import Any

import yaml
from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from gateway.api.callers import authenticate
from gateway.api.problems import log_unexpected
from gateway.appkeys import CALLERS, METRICS, READINESS
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.readiness import ReadinessReport

READINESS_TIMEOUT_SECONDS = 5.0

log = get_logger(__name__)


def _load_openapi() -> dict[str, Any]:
    document = yaml.safe_load(files("gateway.api").joinpath("openapi.yaml").read_text("utf-8"))
    if not isinstance(document, dict):
        raise TypeError("gateway/api/openapi.yaml must hold a mapping")
    return document


# Read once at import, before any loop runs, so serving it never touches the disk.
OPENAPI: dict[str, Any] = _load_openapi()
_OPENAPI_JSON = json.dumps(OPENAPI, separators=(",", ":")).encode("utf-8")


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and its loop answers; dependencies are /readyz's business."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    report: ReadinessReport
    try:
        # A hung check must not pile up a coroutine per probe; probes give up long before.
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            report = await request.config_dict[READINESS]()
    except TimeoutError:
        log.warning("readiness_check_timed_out", timeout_seconds=READINESS_TIMEOUT_SECONDS)
        report = {
            "readiness": (False, f"the checks took longer than {READINESS_TIMEOUT_SECONDS} s")
        }
    except Exception as exc:
        # A readiness check that crashes means "not ready", not "the probe endpoint is broken".
        await log_unexpected("readiness_check_failed", exc)
        report = {"readiness": (False, "the readiness checks failed; see the gateway's logs")}
    report = {**report, "callers": _callers_check(request)}
    checks = {name: {"ok": ok, "detail": detail} for name, (ok, detail) in report.items()}
    ready = all(ok for ok, _ in report.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )


def _callers_check(request: web.Request) -> tuple[bool, str]:
    # Always reported, so a gateway running with authentication disabled says so to anyone
    # who looks, and one with no method configured is not ready to serve anybody.
    gate = request.config_dict.get(CALLERS)
    if gate is None:
        return False, "caller authentication is not set up: every call is refused"
    return gate.readiness()


async def metrics(request: web.Request) -> web.Response:
    # The series are labelled with every tenant's namespace: not for anonymous callers. Any
    # authenticated caller may read them; Prometheus scrapes the metrics listener instead.
    authenticate(request, "metrics.read")
    return _exposition(request)


def _exposition(request: web.Request) -> web.Response:
    return web.Response(
        body=request.config_dict[METRICS].render(),
        headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4},
    )


async def _scrape(request: web.Request) -> web.Response:
    return _exposition(request)


def metrics_app(metrics: Metrics) -> web.Application:
    """The metrics listener's application: GET /metrics and nothing else, without a caller
    (whoever reaches its port is Prometheus: the NetworkPolicy admits nobody else)."""
    app = web.Application()
    app[METRICS] = metrics
    app.router.add_get("/metrics", _scrape, name="metrics", allow_head=False)
    return app


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=_OPENAPI_JSON, content_type="application/json")
