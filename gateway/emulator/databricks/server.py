"""The emulator's aiohttp application, and a server to run it on a real socket.

Middlewares, outermost first: request counting, fault injection (before anything takes
effect), unexpected-error answers, authentication of ``/api/`` by the identity service, and
the per-endpoint request-rate limits. ``/emulator/`` is neither counted, faulted nor
authenticated. The emulated Entra ID (``entra``) is served on the same app, so its token
endpoints are counted and faulted like the workspace's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.emulator.clock import Clock
from gateway.emulator.databricks import clusters
from gateway.emulator.databricks.admin import AdminApi
from gateway.emulator.databricks.config import EmulatorConfig
from gateway.emulator.databricks.entra import EntraService
from gateway.emulator.databricks.faults import ADMIN_PREFIX, FaultSpec, faults_middleware
from gateway.emulator.databricks.git_credentials_api import GitCredentialsApi, entra_facts
from gateway.emulator.databricks.identity import AuthFailure, IdentityService
from gateway.emulator.databricks.jobs import JobsApi
from gateway.emulator.databricks.workspace import PRINCIPAL, Workspace, api_error
from gateway.emulator.serving import LoopbackServer
from gateway.logs import get_logger

log = get_logger(__name__)

WORKSPACE = web.AppKey("lakegate_emulator_workspace", Workspace)
ENTRA = web.AppKey("lakegate_emulator_entra", EntraService)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def _stats_middleware(ws: Workspace) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        template = _route_template(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            ws.stats.record(request.method, template, exc.status)
            raise
        except asyncio.CancelledError:
            ws.stats.record(request.method, template, "cancelled")
            raise
        transport = request.transport
        gone = transport is None or transport.is_closing()
        ws.stats.record(request.method, template, "dropped" if gone else response.status)
        return response

    return middleware


@web.middleware
async def _errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("emulator_handler_failed", method=request.method, path=request.path)
        return api_error(500, "INTERNAL_ERROR", "Internal error.", with_request_info=True)


def _auth_middleware(ws: Workspace) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        try:
            request[PRINCIPAL] = ws.identity.authenticate(request.headers.get("Authorization"))
        except AuthFailure as failure:
            headers = {}
            message = failure.body.get("message")
            if isinstance(message, str):
                headers["X-Databricks-Reason-Phrase"] = message
            return web.json_response(failure.body, status=failure.status, headers=headers)
        principal = request[PRINCIPAL].name
        ws.azure_headers.record(request.method, request.path, principal, request.headers)
        response = await handler(request)
        response.headers["X-Databricks-Org-Id"] = str(ws.config.workspace_id)
        return response

    return middleware


def _rate_middleware(ws: Workspace) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        _, sep, endpoint = request.path.partition("/jobs/")
        if not sep or not request.path.startswith("/api/"):
            return await handler(request)
        refusal = ws.limiter.check(endpoint)
        if refusal is None:
            return await handler(request)
        log.info("emulator_rate_limited", endpoint=endpoint, retry_after=refusal.retry_after)
        return api_error(
            429,
            "REQUEST_LIMIT_EXCEEDED",
            refusal.message,
            retry_after=refusal.retry_after,
            with_request_info=True,
        )

    return middleware


def _host_metadata(ws: Workspace) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        # Newer SDKs read this on every Config init and log a warning when it fails; without
        # it they find no OIDC endpoint. Shape: reference section 3; host_type's spelling is
        # the go-sdk's ("workspace", "account", "unified").
        base = ws.config.public_url or str(request.url.origin())
        account_id = ws.identity.config.account_id
        return web.json_response(
            {
                "oidc_endpoint": f"{base}/oidc",
                "account_id": account_id,
                "workspace_id": str(ws.config.workspace_id),
                "cloud": ws.config.cloud,
                "host_type": "workspace",
                # The audience the emulator's federation policies take when they name none,
                # so an SDK that adopts this default is accepted by a default policy.
                "token_federation_default_oidc_audiences": [account_id],
            }
        )

    return handler


async def _not_found(request: web.Request) -> web.Response:
    tail = request.match_info["tail"]
    _, _, rest = tail.partition("/")
    # Real workspaces name the path without its /api/<version> prefix.
    shown = "/" + rest if tail[:1].isdigit() else "/" + tail
    return api_error(404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {shown}'")


def create_app(
    config: EmulatorConfig | None = None, *, clock: Clock | None = None
) -> web.Application:
    """The emulated workspace as an aiohttp application; its state is ``app[WORKSPACE]``."""
    ws = Workspace(config or EmulatorConfig(), clock or Clock())
    app = web.Application(
        middlewares=[
            _stats_middleware(ws),
            faults_middleware(ws.faults),
            _errors_middleware,
            _auth_middleware(ws),
            _rate_middleware(ws),
        ]
    )
    app[WORKSPACE] = ws
    # Registers the Entra apps as service principals and its tokens with the identity service.
    app[ENTRA] = EntraService(ws.config.entra, ws.clock, ws.identity)
    app.add_routes(AdminApi(ws).routes())
    app.add_routes(ws.identity.routes())
    app.add_routes(app[ENTRA].routes())
    app.router.add_get("/.well-known/databricks-config", _host_metadata(ws))
    app.add_routes(JobsApi(ws).routes())
    ws.git_credentials.inspect = entra_facts(app[ENTRA])
    app.add_routes(GitCredentialsApi(ws.git_credentials).routes())
    app.add_routes(clusters.routes())
    # Last: any other /api/ path, or a known path with the wrong method.
    app.router.add_route("*", "/api/{tail:.*}", _not_found)
    app.cleanup_ctx.append(ws.identity.cleanup_ctx)

    async def release_hangs(_app: web.Application) -> None:
        ws.faults.release_hangs()

    app.on_shutdown.append(release_hangs)
    return app


class EmulatorServer(LoopbackServer):
    """The emulator on a real loopback socket, for tests, the CLI and benchmarks.

    ``async with EmulatorServer(config) as server:`` listens on 127.0.0.1 and a free port;
    ``server.url`` is the workspace host to give a client. In-process helpers (``fault``,
    ``advance``, ``runs``, ``stats``, ``reset``) do what the /emulator/ API does.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.clock = clock or Clock()
        super().__init__(
            create_app(self.config, clock=self.clock), host=host, port=port, name="emulator"
        )

    @property
    def workspace(self) -> Workspace:
        return self.app[WORKSPACE]

    @property
    def identity(self) -> IdentityService:
        return self.workspace.identity

    @property
    def entra(self) -> EntraService:
        return self.app[ENTRA]

    def _on_started(self) -> None:
        log.info("emulator_started", url=self.url, workspace_id=self.config.workspace_id)

    def _on_stopped(self) -> None:
        log.info("emulator_stopped")

    def fault(self, **spec: Any) -> str:
        """Add a fault rule (fields of ``FaultSpec``); returns its id."""
        return self.workspace.faults.add(FaultSpec(**spec))

    def clear_faults(self) -> None:
        self.workspace.faults.clear()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def runs(self) -> list[dict[str, Any]]:
        """Every run ever created, as GET /emulator/runs lists them."""
        return self.workspace.run_summaries()

    def stats(self) -> dict[str, Any]:
        return self.workspace.stats_dict()

    def git_credentials(self) -> list[dict[str, Any]]:
        """Every Git credential, its token described (resource, expiry), never shown."""
        return self.workspace.git_credentials.summaries()

    def reset(self) -> None:
        self.workspace.reset()


async def serve(config: EmulatorConfig, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the emulator until cancelled."""
    async with EmulatorServer(config, host=host, port=port):
        await asyncio.Event().wait()
