"""The fake API's aiohttp application, and a server to run it on a real loopback socket.

Every request outside /emulator/ goes through one middleware, in the apiserver's order:
authentication (401), then RBAC (403) on the verb and resource read from the URL, then the
handler (404, 422, ...). Every answer is counted by verb, resource and status, and every
error is a ``Status`` object, unknown routes included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from gateway.emulator.clock import Clock
from gateway.emulator.kubernetes.access import ANONYMOUS, RequestInfo, request_info
from gateway.emulator.kubernetes.admin import ADMIN_PREFIX, AdminApi
from gateway.emulator.kubernetes.authn_api import AuthnApi
from gateway.emulator.kubernetes.cluster import Cluster
from gateway.emulator.kubernetes.config import (
    KubeEmulatorConfig,
    SecretConfig,
    ServiceAccountConfig,
    check_labels,
    check_namespace,
    check_object_name,
)
from gateway.emulator.kubernetes.handlers import CoreApi
from gateway.emulator.kubernetes.status import StatusError, route_not_found, unauthorized
from gateway.emulator.kubernetes.tokens import PrivateKey
from gateway.emulator.kubernetes.watch import STREAM_STARTED
from gateway.emulator.serving import LoopbackServer
from gateway.logs import get_logger

log = get_logger(__name__)

CLUSTER = web.AppKey("lakegate_kube_emulator_cluster", Cluster)
DISCOVERY_PATHS = frozenset({"/.well-known/openid-configuration", "/openid/v1/jwks"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _answer(
    cluster: Cluster, info: RequestInfo, request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        user = cluster.authenticate(request.headers.get("Authorization"))
        if user is None:
            if not (cluster.config.anonymous_discovery and request.path in DISCOVERY_PATHS):
                raise unauthorized()
            user = ANONYMOUS
        cluster.rbac.check(info, user)
        return await handler(request)
    except StatusError as exc:
        return exc.response()
    except web.HTTPNotFound:
        return route_not_found().response()
    except web.HTTPMethodNotAllowed:
        message = "the server does not allow this method on the requested resource"
        return StatusError(405, message).response()
    except web.HTTPException:
        raise
    except Exception:
        log.exception("kube_emulator_handler_failed", method=request.method, path=request.path)
        return StatusError(500, "Internal error occurred").response()


def _api_middleware(cluster: Cluster) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        if cluster.base_url is None:
            # Served by some other runner than KubeApiServer: the first request tells.
            cluster.base_url = str(request.url.origin())
        info = request_info(request.method, request.path, request.query)
        resource = info.full_resource if info.is_resource else info.path
        status: int | str = "cancelled"
        try:
            response = await _answer(cluster, info, request, handler)
            status = response.status
            return response
        finally:
            if status == "cancelled" and request.get(STREAM_STARTED):
                status = 200
            cluster.stats.record(info.verb, resource, status)

    return middleware


def create_app(
    config: KubeEmulatorConfig | None = None,
    *,
    clock: Clock | None = None,
    signing_key: PrivateKey | None = None,
) -> web.Application:
    """The fake API as an aiohttp application; its state is ``app[CLUSTER]``."""
    cluster = Cluster(config or KubeEmulatorConfig(), clock or Clock(), signing_key)
    app = web.Application(middlewares=[_api_middleware(cluster)])
    app[CLUSTER] = cluster
    app.add_routes(AdminApi(cluster).routes())
    app.add_routes(CoreApi(cluster).routes())
    app.add_routes(AuthnApi(cluster).routes())

    async def end_watches(_app: web.Application) -> None:
        cluster.hub.close_all()

    app.on_shutdown.append(end_watches)
    return app


class KubeApiServer(LoopbackServer):
    """The fake API on a real loopback socket, for tests, the CLI and the demo.

    ``async with KubeApiServer(config) as kube:`` listens on 127.0.0.1 and a free port;
    ``kube.url`` is the API server host for a client and, unless the config names another,
    the issuer of the tokens it signs. The methods do what the /emulator/ API does.
    """

    def __init__(
        self,
        config: KubeEmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        signing_key: PrivateKey | None = None,
    ) -> None:
        self.config = config or KubeEmulatorConfig()
        self.clock = clock or Clock()
        app = create_app(self.config, clock=self.clock, signing_key=signing_key)
        super().__init__(app, host=host, port=port, name="fake Kubernetes API")

    @property
    def cluster(self) -> Cluster:
        return self.app[CLUSTER]

    @property
    def issuer(self) -> str:
        return self.cluster.issuer

    def _on_started(self) -> None:
        self.cluster.base_url = self.url
        log.info("kube_emulator_started", url=self.url, issuer=self.issuer)

    def _on_stopped(self) -> None:
        log.info("kube_emulator_stopped")

    # --- objects ------------------------------------------------------------------------

    def create_service_account(
        self,
        namespace: str,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        uid: str | None = None,
    ) -> dict[str, Any]:
        """Create the ServiceAccount, or replace it (a new ``uid`` makes it a new object)."""
        spec = ServiceAccountConfig(
            labels=dict(labels or {}), annotations=dict(annotations or {}), uid=uid
        )
        sa = self.cluster.store.put_service_account(
            check_namespace(namespace),
            check_object_name(name),
            labels=spec.labels,
            annotations=spec.annotations,
            uid=spec.uid,
        )
        return sa.to_json()

    def label_service_account(
        self, namespace: str, name: str, labels: Mapping[str, str | None]
    ) -> dict[str, Any]:
        """Merge ``labels`` into the ServiceAccount's; a None value removes the label."""
        ServiceAccountConfig(labels={k: v for k, v in labels.items() if v is not None})
        return self._patch(namespace, name, labels=labels)

    def annotate_service_account(
        self, namespace: str, name: str, annotations: Mapping[str, str | None]
    ) -> dict[str, Any]:
        """Merge ``annotations``; a None value removes the annotation."""
        return self._patch(namespace, name, annotations=annotations)

    def _patch(self, namespace: str, name: str, **patch: Any) -> dict[str, Any]:
        sa = self.cluster.store.patch_service_account(namespace, name, **patch)
        if sa is None:
            raise KeyError(f"no service account {namespace}/{name}")
        return sa.to_json()

    def delete_service_account(self, namespace: str, name: str) -> bool:
        return self.cluster.store.delete_service_account(namespace, name) is not None

    def service_account(self, namespace: str, name: str) -> dict[str, Any] | None:
        sa = self.cluster.store.service_account(namespace, name)
        return sa.to_json() if sa is not None else None

    def put_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str | bytes],
        *,
        type: str = "Opaque",
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create or replace a Secret from plain values (they are served base64-encoded)."""
        SecretConfig(string_data={k: "" for k in data}, labels=dict(labels or {}))
        raw = {k: v.encode() if isinstance(v, str) else bytes(v) for k, v in data.items()}
        secret = self.cluster.store.put_secret(
            check_namespace(namespace), check_object_name(name), raw, type=type, labels=labels
        )
        return secret.to_json()

    def delete_secret(self, namespace: str, name: str) -> bool:
        return self.cluster.store.delete_secret(namespace, name) is not None

    def delete_namespace(self, namespace: str) -> bool:
        return self.cluster.store.delete_namespace(namespace)

    def label_namespace(self, namespace: str, labels: Mapping[str, str | None]) -> dict[str, str]:
        """Merge ``labels`` into the namespace's (creating it); a None value removes one."""
        check_labels({k: v for k, v in labels.items() if v is not None})
        return self.cluster.store.label_namespace(check_namespace(namespace), labels)

    # --- RBAC, watches, keys ----------------------------------------------------------------

    def deny(
        self,
        verb: str,
        resource: str,
        *,
        namespace: str | None = None,
        name: str | None = None,
        user: str | None = None,
    ) -> str:
        """Refuse ``verb`` on ``resource`` (e.g. ``watch``, ``serviceaccounts``); the rule id."""
        return self.cluster.rbac.deny(verb, resource, namespace=namespace, name=name, user=user)

    def allow(self, rule_id: str | None = None) -> int:
        """Remove one deny rule, or every one."""
        return self.cluster.rbac.allow(rule_id)

    def compact_watch_history(self) -> None:
        self.cluster.store.compact()

    def expire_watches(self) -> int:
        """Make every resourceVersion handed out so far too old (410) and end open watches
        with ERROR 410; how many watches were open."""
        return self.cluster.hub.expire()

    def send_bookmarks(self) -> int:
        return self.cluster.hub.send_bookmarks()

    def close_watches(self) -> int:
        return self.cluster.hub.close_all()

    @property
    def open_watches(self) -> int:
        return self.cluster.hub.open_count

    def rotate_key(self, *, keep_old: bool = True) -> str:
        """A new signing key; the old one stays in the JWKS unless ``keep_old`` is False."""
        return self.cluster.keys.rotate(self.cluster.new_key(), keep_old=keep_old).kid

    def remove_key(self, kid: str) -> bool:
        return self.cluster.keys.remove(kid)

    @property
    def kid(self) -> str:
        return self.cluster.keys.current.kid

    def jwks(self) -> dict[str, Any]:
        return self.cluster.keys.jwks()

    def mint_token(
        self,
        namespace: str,
        service_account: str,
        audiences: list[str] | None = None,
        seconds: int | None = None,
    ) -> str:
        """A token as TokenRequest would mint it, without counting as one."""
        sa = self.cluster.store.service_account(namespace, service_account)
        if sa is None:
            raise KeyError(f"no service account {namespace}/{service_account}")
        lifetime = seconds or self.config.tokens.default_expiration_seconds
        token, _ = self.cluster.mint(sa, audiences or self.cluster.api_audiences, lifetime)
        return token

    # --- stats and clock ----------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return self.cluster.stats.as_dict()

    def request_count(self, verb: str, resource: str, status: int | None = None) -> int:
        """Requests answered for ``verb`` on ``resource`` (``serviceaccounts/token``...)."""
        return self.cluster.stats.count(verb, resource, status)

    def token_requests(self, namespace: str, service_account: str) -> int:
        """TokenRequests that passed RBAC for this ServiceAccount, whatever their answer."""
        return self.cluster.stats.token_requests[(namespace, service_account)]

    @property
    def token_reviews(self) -> int:
        return sum(self.cluster.stats.token_reviews.values())

    def reset_stats(self) -> None:
        self.cluster.stats.reset()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)


async def serve(config: KubeEmulatorConfig, host: str = "127.0.0.1", port: int = 8001) -> None:
    """Run the fake API until cancelled."""
    async with KubeApiServer(config, host=host, port=port):
        await asyncio.Event().wait()
