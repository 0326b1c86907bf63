"""Method ``none``, no method at all, public routes, the handler guard, and reload."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from gateway.api import setup_api
from gateway.api.callers import authorize
from gateway.app import Overrides, create_app
from gateway.appkeys import CALLERS, METRICS, READINESS, SETTINGS
from gateway.callers import CallerGate
from gateway.callers.gate import DISABLED_DETAIL
from gateway.errors import ConfigError
from gateway.metrics import Metrics
from gateway.settings import CallersSettings, Settings
from tests.api.conftest import always_ready
from tests.callers.conftest import CallersStack, bearer, sha256_hex, submit_body

KEY = "lgk_modes_0123456789abcdef"


async def test_none_lets_every_caller_act_for_every_namespace(
    callers_stack: CallersStack, http: aiohttp.ClientSession
) -> None:
    """With method none, a request without credential submits in any namespace."""
    stack = await callers_stack({"methods": ["none"]}, kubernetes=False)
    for ns in ("team-00", "team-03"):
        url = f"{stack.url}/v1/namespaces/{ns}/runs"
        async with http.post(url, json=submit_body("open")) as response:
            assert response.status == 201


async def test_none_is_reported_by_readyz_and_logged_loudly(
    callers_stack: CallersStack, http: aiohttp.ClientSession
) -> None:
    """/readyz's callers check says AUTHENTICATION DISABLED; start-up logs a warning."""
    with capture_logs() as events:
        stack = await callers_stack({"methods": ["none"]}, kubernetes=False)
    async with http.get(f"{stack.url}/readyz") as response:
        body = await response.json()
    assert response.status == 200
    assert body["checks"]["callers"] == {"ok": True, "detail": DISABLED_DETAIL}
    warnings = [e for e in events if e["event"] == "callers_authentication_disabled"]
    assert warnings
    assert warnings[0]["log_level"] == "warning"


async def test_no_method_refuses_everyone_and_is_not_ready(
    callers_stack: CallersStack, http: aiohttp.ClientSession
) -> None:
    """An empty callers section lets nobody in, and /readyz answers 503 saying why."""
    stack = await callers_stack({}, kubernetes=False)
    async with http.get(f"{stack.url}/v1/namespaces/team-00/runs") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="lakegate"'
    async with http.get(f"{stack.url}/readyz") as response:
        body = await response.json()
    assert response.status == 503
    assert body["checks"]["callers"]["ok"] is False


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json"])
async def test_operational_routes_need_no_credential(
    callers_stack: CallersStack, http: aiohttp.ClientSession, path: str
) -> None:
    """Probes and the OpenAPI document answer without (or despite) a credential."""
    stack = await callers_stack(
        {"methods": ["api_key"], "api_keys": [{"name": "k", "sha256": sha256_hex(KEY)}]},
        kubernetes=False,
    )
    for headers in ({}, bearer("not-a-key")):
        async with http.get(stack.url + path, headers=headers) as response:
            assert response.status == 200, (path, headers)


async def test_metrics_on_the_main_listener_need_a_credential(
    callers_stack: CallersStack, http: aiohttp.ClientSession
) -> None:
    """/metrics names every tenant's namespace: anonymous or refused callers get 401 and no
    series; an accepted credential reads them (Prometheus uses the metrics listener)."""
    stack = await callers_stack(
        {"methods": ["api_key"], "api_keys": [{"name": "k", "sha256": sha256_hex(KEY)}]},
        kubernetes=False,
    )
    for headers in ({}, bearer("not-a-key")):
        async with http.get(f"{stack.url}/metrics", headers=headers) as response:
            assert response.status == 401, headers
            assert "lakegate_" not in await response.text()
    async with http.get(f"{stack.url}/metrics", headers=bearer(KEY)) as response:
        assert response.status == 200
        assert "lakegate_http_requests_total" in await response.text()


async def test_unknown_and_forbidden_namespaces_get_the_same_answer(
    callers_stack: CallersStack, http: aiohttp.ClientSession
) -> None:
    """A namespace that does not exist and one that is not the caller's answer alike."""
    stack = await callers_stack(
        {
            "methods": ["api_key"],
            "api_keys": [{"name": "k", "sha256": sha256_hex(KEY), "namespaces": ["team-00"]}],
        },
        kubernetes=False,
    )
    answers = []
    for ns in ("team-01", "no-such-ns"):
        async with http.get(f"{stack.url}/v1/namespaces/{ns}/runs", headers=bearer(KEY)) as r:
            body = await r.json()
            answers.append((r.status, body["type"], body["title"], body["detail"].replace(ns, "")))
    assert answers[0] == answers[1]
    assert answers[0][0] == 403


# --- the guard and reload, on a bare API app ------------------------------------------------


@pytest.fixture
async def bare_client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """The API with one extra protected route whose handler forgets to authorize."""
    settings = Settings()
    app = web.Application()
    setup_api(app, settings)

    async def forgetful(_request: web.Request) -> web.Response:
        return web.json_response({"secret": "data"})

    async def careful(request: web.Request) -> web.Response:
        caller = await authorize(request, request.match_info["ns"], "test.read")
        return web.json_response({"subject": caller.subject})

    app.router.add_get("/v1/forgetful", forgetful)
    app.router.add_get("/v1/careful/{ns}", careful)
    gate = CallerGate(
        CallersSettings.model_validate(
            {
                "methods": ["api_key"],
                "api_keys": [{"name": "k", "sha256": sha256_hex(KEY), "namespaces": ["team-00"]}],
            }
        )
    )

    async def components(app: web.Application) -> AsyncIterator[None]:
        app[METRICS] = Metrics()
        app[READINESS] = always_ready
        app[SETTINGS] = settings
        app[CALLERS] = gate
        yield
        await gate.aclose()

    app.cleanup_ctx.append(components)
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def test_a_handler_that_forgets_to_authorize_answers_500(
    bare_client: TestClient[web.Request, web.Application],
) -> None:
    """A protected route answering success without authorize() becomes a 500 with no data."""
    with capture_logs() as events:
        response = await bare_client.get("/v1/forgetful", headers=bearer(KEY))
    assert response.status == 500
    assert "data" not in await response.text()
    assert any(e["event"] == "handler_skipped_authorization" for e in events)


async def test_reload_swaps_keys_and_grants_without_a_restart(
    bare_client: TestClient[web.Request, web.Application],
) -> None:
    """After reload, the old key is refused, the new one works, with its new namespaces."""
    new_key = "lgk_reloaded_abcdef0123456789"
    assert (await bare_client.get("/v1/careful/team-00", headers=bearer(KEY))).status == 200
    gate = bare_client.app[CALLERS]
    gate.reload(
        CallersSettings.model_validate(
            {
                "methods": ["api_key"],
                "api_keys": [{"name": "k2", "sha256": sha256_hex(new_key)}],
                "grants": [{"subject": "apikey:k2", "namespaces": ["team-05"]}],
            }
        )
    )
    assert (await bare_client.get("/v1/careful/team-00", headers=bearer(KEY))).status == 401
    assert (await bare_client.get("/v1/careful/team-05", headers=bearer(new_key))).status == 200
    assert (await bare_client.get("/v1/careful/team-00", headers=bearer(new_key))).status == 403


async def test_a_reload_needing_kubernetes_is_refused_and_the_old_section_kept(
    bare_client: TestClient[web.Request, web.Application],
) -> None:
    """A section that needs TokenReview cannot be loaded into a gate built without it."""
    gate = bare_client.app[CALLERS]
    with pytest.raises(ConfigError, match="kubernetes"):
        gate.reload(CallersSettings(methods=("kubernetes",)))
    assert (await bare_client.get("/v1/careful/team-00", headers=bearer(KEY))).status == 200


async def test_sighup_reloads_the_callers_section(tmp_path: Any) -> None:
    """With a settings source, SIGHUP re-reads it and the new grants apply."""

    def settings_with(namespaces: list[str]) -> Settings:
        return Settings.model_validate(
            {
                "store": {"sqlite_path": str(tmp_path / "l.db")},
                "callers": {
                    "methods": ["api_key"],
                    "api_keys": [
                        {"name": "k", "sha256": sha256_hex(KEY), "namespaces": namespaces}
                    ],
                },
            }
        )

    current = {"settings": settings_with(["team-00"])}
    app = create_app(
        current["settings"],
        Overrides(environ={}, run_poller=False, settings_source=lambda: current["settings"]),
    )
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    try:
        url = "/v1/namespaces/team-01/runs"
        assert (await client.get(url, headers=bearer(KEY))).status == 403
        current["settings"] = settings_with(["team-01"])
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            if app[CALLERS].settings.api_keys[0].namespaces == ("team-01",):
                break
            await asyncio.sleep(0.02)
        assert (await client.get(url, headers=bearer(KEY))).status == 200
    finally:
        await client.close()
