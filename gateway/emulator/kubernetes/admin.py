"""The fake API's own control surface under /emulator/: objects, RBAC, watches, keys, stats.

Not part of the Kubernetes API, not authenticated and not counted: tests and the demo drive
the cluster through it (``KubeApiServer`` offers the same operations in-process).

    GET    /emulator/state                                  namespaces, ServiceAccounts, Secrets
    PUT    /emulator/namespaces/{ns}/serviceaccounts/{name} {labels, annotations, uid}
    PATCH  /emulator/namespaces/{ns}/serviceaccounts/{name} {labels, annotations}: null removes
    DELETE /emulator/namespaces/{ns}/serviceaccounts/{name}
    PUT    /emulator/namespaces/{ns}/secrets/{name}         {type, string_data, data, labels}
    DELETE /emulator/namespaces/{ns}/secrets/{name}
    DELETE /emulator/namespaces/{ns}                        with everything in it
    PATCH  /emulator/namespaces/{ns}                        {labels}: null removes; creates
    POST   /emulator/rbac/deny   {verb, resource, namespace?, name?, user?} -> {"id": "deny-1"}
    GET    /emulator/rbac        {"rules": [...]}
    DELETE /emulator/rbac        remove every deny rule;  DELETE /emulator/rbac/{id}: one
    GET    /emulator/watches     open and started watches, resourceVersion, compacted version
    POST   /emulator/watches/{compact|expire|bookmark|close}
    GET    /emulator/keys        {"current": kid, "kids": [...]}
    POST   /emulator/keys/rotate {"keep_old": true} -> {"kid": ...};  DELETE /emulator/keys/{kid}
    POST   /emulator/tokens      {namespace, service_account, audiences?, expiration_seconds?}
    GET    /emulator/stats       requests by verb/resource/status, TokenRequests, TokenReviews
    POST   /emulator/stats/reset
    GET    /emulator/clock;  POST /emulator/clock/advance {"seconds": N}
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.emulator.kubernetes.cluster import Cluster
from gateway.emulator.kubernetes.config import (
    SecretConfig,
    ServiceAccountConfig,
    check_labels,
    check_namespace,
    check_object_name,
)
from gateway.emulator.kubernetes.objects import rfc3339
from gateway.logs import get_logger

log = get_logger(__name__)

_M = TypeVar("_M", bound=BaseModel)
ADMIN_PREFIX = "/emulator/"


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LabelPatch(_Body):
    """A merge patch of labels and annotations: a null value removes the key."""

    labels: dict[str, str | None] = Field(default_factory=dict)
    annotations: dict[str, str | None] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        check_labels({k: v for k, v in value.items() if v is not None})
        return value


class DenyBody(_Body):
    verb: str = Field(min_length=1)
    resource: str = Field(min_length=1)
    namespace: str | None = None
    name: str | None = None
    user: str | None = None


class MintBody(_Body):
    namespace: str
    service_account: str
    audiences: list[str] = Field(default_factory=list)
    expiration_seconds: int | None = Field(default=None, ge=600)


class RotateBody(_Body):
    keep_old: bool = True


class AdvanceBody(_Body):
    seconds: float = Field(ge=0, allow_inf_nan=False)


def _error(status: int, message: str, **extra: Any) -> web.HTTPException:
    cls = web.HTTPNotFound if status == 404 else web.HTTPBadRequest
    return cls(text=json.dumps({"error": message, **extra}), content_type="application/json")


async def _parse(request: web.Request, model: type[_M]) -> _M:
    try:
        return model.model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        raise _error(400, "invalid request body", errors=errors) from None


def _namespace(request: web.Request) -> str:
    try:
        return check_namespace(request.match_info["namespace"])
    except ValueError as exc:
        raise _error(400, str(exc)) from None


def _names(request: web.Request) -> tuple[str, str]:
    namespace = _namespace(request)
    try:
        return namespace, check_object_name(request.match_info["name"])
    except ValueError as exc:
        raise _error(400, str(exc)) from None


def state(cluster: Cluster) -> dict[str, Any]:
    store = cluster.store
    return {
        "resource_version": str(store.resource_version),
        "namespaces": sorted(store.namespaces),
        "service_accounts": [sa.to_json() for sa in store.list_service_accounts()],
        # Which secrets exist and their keys; values stay out of an unauthenticated page.
        "secrets": [
            {"namespace": s.namespace, "name": s.name, "type": s.type, "keys": sorted(s.data)}
            for _, s in sorted(store.secrets.items())
        ],
    }


def watches(cluster: Cluster) -> dict[str, Any]:
    return {
        "open": cluster.hub.open_count,
        "started": cluster.hub.started,
        "resource_version": str(cluster.store.resource_version),
        "compacted_resource_version": str(cluster.store.compacted_rv),
    }


class AdminApi:
    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    def routes(self) -> list[web.RouteDef]:
        ns = "/emulator/namespaces/{namespace}"
        return [
            web.get("/emulator/state", self.state),
            web.put(f"{ns}/serviceaccounts/{{name}}", self.put_service_account),
            web.patch(f"{ns}/serviceaccounts/{{name}}", self.patch_service_account),
            web.delete(f"{ns}/serviceaccounts/{{name}}", self.delete_service_account),
            web.put(f"{ns}/secrets/{{name}}", self.put_secret),
            web.delete(f"{ns}/secrets/{{name}}", self.delete_secret),
            web.delete(ns, self.delete_namespace),
            web.patch(ns, self.label_namespace),
            web.post("/emulator/rbac/deny", self.deny),
            web.get("/emulator/rbac", self.rules),
            web.delete("/emulator/rbac", self.allow),
            web.delete("/emulator/rbac/{rule_id}", self.allow),
            web.get("/emulator/watches", self.watches),
            web.post("/emulator/watches/{action}", self.watch_action),
            web.get("/emulator/keys", self.keys),
            web.post("/emulator/keys/rotate", self.rotate),
            web.delete("/emulator/keys/{kid}", self.remove_key),
            web.post("/emulator/tokens", self.mint),
            web.get("/emulator/stats", self.stats),
            web.post("/emulator/stats/reset", self.reset_stats),
            web.get("/emulator/clock", self.clock),
            web.post("/emulator/clock/advance", self.advance),
        ]

    async def state(self, _request: web.Request) -> web.Response:
        return web.json_response(state(self._cluster))

    async def put_service_account(self, request: web.Request) -> web.Response:
        namespace, name = _names(request)
        body = await _parse(request, ServiceAccountConfig)
        sa = self._cluster.store.put_service_account(
            namespace, name, labels=body.labels, annotations=body.annotations, uid=body.uid
        )
        log.info("kube_emulator_service_account_put", namespace=namespace, name=name)
        return web.json_response(sa.to_json())

    async def patch_service_account(self, request: web.Request) -> web.Response:
        namespace, name = _names(request)
        body = await _parse(request, LabelPatch)
        sa = self._cluster.store.patch_service_account(
            namespace, name, labels=body.labels, annotations=body.annotations
        )
        if sa is None:
            raise _error(404, f"no service account {namespace}/{name}")
        return web.json_response(sa.to_json())

    async def delete_service_account(self, request: web.Request) -> web.Response:
        namespace, name = _names(request)
        if self._cluster.store.delete_service_account(namespace, name) is None:
            raise _error(404, f"no service account {namespace}/{name}")
        log.info("kube_emulator_service_account_deleted", namespace=namespace, name=name)
        return web.json_response({"deleted": f"{namespace}/{name}"})

    async def put_secret(self, request: web.Request) -> web.Response:
        namespace, name = _names(request)
        body = await _parse(request, SecretConfig)
        secret = self._cluster.store.put_secret(
            namespace, name, body.decoded(), type=body.type, labels=body.labels
        )
        return web.json_response({"namespace": namespace, "name": name, "uid": secret.uid})

    async def delete_secret(self, request: web.Request) -> web.Response:
        namespace, name = _names(request)
        if self._cluster.store.delete_secret(namespace, name) is None:
            raise _error(404, f"no secret {namespace}/{name}")
        return web.json_response({"deleted": f"{namespace}/{name}"})

    async def delete_namespace(self, request: web.Request) -> web.Response:
        namespace = _namespace(request)
        if not self._cluster.store.delete_namespace(namespace):
            raise _error(404, f"no namespace {namespace}")
        return web.json_response({"deleted": namespace})

    async def label_namespace(self, request: web.Request) -> web.Response:
        namespace = _namespace(request)
        body = await _parse(request, LabelPatch)
        labels = self._cluster.store.label_namespace(namespace, body.labels)
        return web.json_response({"name": namespace, "labels": labels})

    async def deny(self, request: web.Request) -> web.Response:
        body = await _parse(request, DenyBody)
        rule_id = self._cluster.rbac.deny(
            body.verb, body.resource, namespace=body.namespace, name=body.name, user=body.user
        )
        log.info("kube_emulator_denied", rule=rule_id, verb=body.verb, resource=body.resource)
        return web.json_response({"id": rule_id})

    async def rules(self, _request: web.Request) -> web.Response:
        return web.json_response({"rules": [r.as_dict() for r in self._cluster.rbac.rules()]})

    async def allow(self, request: web.Request) -> web.Response:
        rule_id = request.match_info.get("rule_id")
        removed = self._cluster.rbac.allow(rule_id)
        if rule_id is not None and not removed:
            raise _error(404, f"no rule {rule_id}")
        return web.json_response({"removed": removed})

    async def watches(self, _request: web.Request) -> web.Response:
        return web.json_response(watches(self._cluster))

    async def watch_action(self, request: web.Request) -> web.Response:
        hub, action = self._cluster.hub, request.match_info["action"]
        if action == "compact":
            self._cluster.store.compact()
            affected = 0
        elif action == "expire":
            affected = hub.expire()
        elif action == "bookmark":
            affected = hub.send_bookmarks()
        elif action == "close":
            affected = hub.close_all()
        else:
            raise _error(404, f"no watch action {action}; try compact, expire, bookmark, close")
        log.info("kube_emulator_watches", action=action, affected=affected)
        return web.json_response({"affected": affected, **watches(self._cluster)})

    async def keys(self, _request: web.Request) -> web.Response:
        keys = self._cluster.keys
        return web.json_response({"current": keys.current.kid, "kids": keys.kids})

    async def rotate(self, request: web.Request) -> web.Response:
        body = await _parse(request, RotateBody)
        cluster = self._cluster
        new = cluster.keys.rotate(cluster.new_key(), keep_old=body.keep_old)
        log.info("kube_emulator_key_rotated", kid=new.kid)
        return web.json_response({"kid": new.kid})

    async def remove_key(self, request: web.Request) -> web.Response:
        kid = request.match_info["kid"]
        try:
            removed = self._cluster.keys.remove(kid)
        except ValueError as exc:
            raise _error(400, str(exc)) from None
        if not removed:
            raise _error(404, f"no key {kid}")
        return web.json_response({"removed": kid})

    async def mint(self, request: web.Request) -> web.Response:
        body = await _parse(request, MintBody)
        cluster = self._cluster
        sa = cluster.store.service_account(body.namespace, body.service_account)
        if sa is None:
            raise _error(404, f"no service account {body.namespace}/{body.service_account}")
        seconds = body.expiration_seconds or cluster.config.tokens.default_expiration_seconds
        token, expires = cluster.mint(sa, body.audiences or cluster.api_audiences, seconds)
        return web.json_response({"token": token, "expiration_timestamp": rfc3339(expires)})

    async def stats(self, _request: web.Request) -> web.Response:
        return web.json_response(self._cluster.stats.as_dict())

    async def reset_stats(self, _request: web.Request) -> web.Response:
        self._cluster.stats.reset()
        return web.json_response({})

    async def clock(self, _request: web.Request) -> web.Response:
        clock = self._cluster.clock
        return web.json_response({"now": rfc3339(clock.now()), "offset_seconds": clock.offset})

    async def advance(self, request: web.Request) -> web.Response:
        body = await _parse(request, AdvanceBody)
        self._cluster.clock.advance(body.seconds)
        return await self.clock(request)
