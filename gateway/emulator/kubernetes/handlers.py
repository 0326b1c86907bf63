"""The read side of the fake API: ServiceAccounts (get, list, watch), Secrets, Namespaces
(get), discovery.

Authentication and RBAC happen in the server's middlewares before any of these run.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gateway.emulator.kubernetes.access import query_bool
from gateway.emulator.kubernetes.cluster import Cluster
from gateway.emulator.kubernetes.objects import ServiceAccount
from gateway.emulator.kubernetes.selectors import (
    FieldSelector,
    LabelSelector,
    Selection,
    SelectorError,
)
from gateway.emulator.kubernetes.status import bad_request, expired, not_found

# Discovery documents change only on key rotation; real servers let them be cached an hour.
DISCOVERY_CACHE = "public, max-age=3600"
_CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue value from the "
    "response to reissue the list."
)


def json_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _encode_continue(rv: int, after: tuple[str, str]) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": f"{after[0]}/{after[1]}\x00"}
    return base64.b64encode(json.dumps(token, separators=(",", ":")).encode()).decode()


def _decode_continue(raw: str) -> tuple[int, tuple[str, str]]:
    try:
        token = json.loads(base64.b64decode(raw, validate=True))
        rv, start = int(token["rv"]), str(token["start"]).rstrip("\x00")
        namespace, _, name = start.partition("/")
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise bad_request(f"continue key is not valid: {raw}") from None
    return rv, (namespace, name)


def _int_param(query: Any, name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f'invalid {name} "{raw}": must be an integer') from None


class CoreApi:
    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    def routes(self) -> list[web.RouteDef]:
        ns = "/api/v1/namespaces/{namespace}"
        return [
            web.get("/api/v1/serviceaccounts", self.list_service_accounts),
            web.get(f"{ns}/serviceaccounts", self.list_service_accounts),
            web.get(f"{ns}/serviceaccounts/{{name}}", self.get_service_account),
            web.get(f"{ns}/secrets/{{name}}", self.get_secret),
            web.get(ns, self.get_namespace),
            web.get("/.well-known/openid-configuration", self.openid_configuration),
            web.get("/openid/v1/jwks", self.jwks),
        ]

    def _selection(self, request: web.Request) -> Selection:
        query = request.query
        try:
            return Selection(
                request.match_info.get("namespace"),
                LabelSelector.parse(query.get("labelSelector")),
                FieldSelector.parse(query.get("fieldSelector")),
            )
        except SelectorError as exc:
            raise bad_request(str(exc)) from None

    async def list_service_accounts(self, request: web.Request) -> web.StreamResponse:
        selection = self._selection(request)
        if query_bool(request.query, "watch"):
            return await self._cluster.hub.serve(request, selection, request.query)
        store = self._cluster.store
        matches = [
            sa for sa in store.list_service_accounts(selection.namespace) if selection.matches(sa)
        ]
        metadata: dict[str, Any] = {"resourceVersion": str(store.resource_version)}
        raw_continue = request.query.get("continue")
        if raw_continue:
            rv, after = _decode_continue(raw_continue)
            if rv < store.compacted_rv:
                raise expired(_CONTINUE_TOO_OLD)
            # Not a snapshot at rv: the rest of the list as it is now, under rv's label.
            matches = [sa for sa in matches if sa.key > after]
            metadata["resourceVersion"] = str(rv)
        limit = _int_param(request.query, "limit")
        page: list[ServiceAccount] = matches
        if limit is not None and 0 < limit < len(matches):
            page = matches[:limit]
            list_rv = int(metadata["resourceVersion"])
            metadata["continue"] = _encode_continue(list_rv, page[-1].key)
            metadata["remainingItemCount"] = len(matches) - limit
        return json_response(
            {
                "kind": "ServiceAccountList",
                "apiVersion": "v1",
                "metadata": metadata,
                # Always a list: the client refuses a ServiceAccountList without items.
                "items": [sa.to_json(typed=False) for sa in page],
            }
        )

    async def get_service_account(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        sa = self._cluster.store.service_account(namespace, name)
        if sa is None:
            raise not_found("serviceaccounts", name)
        return json_response(sa.to_json())

    async def get_secret(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        secret = self._cluster.store.secret(namespace, name)
        if secret is None:
            raise not_found("secrets", name)
        return json_response(secret.to_json())

    async def get_namespace(self, request: web.Request) -> web.Response:
        name = request.match_info["namespace"]
        store = self._cluster.store
        if name not in store.namespaces:
            raise not_found("namespaces", name)
        metadata: dict[str, Any] = {"name": name}
        labels = store.namespace_labels.get(name)
        if labels:
            metadata["labels"] = dict(labels)
        body = {"kind": "Namespace", "apiVersion": "v1", "metadata": metadata}
        body["status"] = {"phase": "Active"}
        return json_response(body)

    async def openid_configuration(self, _request: web.Request) -> web.Response:
        cluster = self._cluster
        algs = sorted({k["alg"] for k in cluster.keys.jwks()["keys"]})
        body = {
            "issuer": cluster.issuer,
            "jwks_uri": cluster.jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
        }
        return json_response(body, headers={"Cache-Control": DISCOVERY_CACHE})

    async def jwks(self, _request: web.Request) -> web.Response:
        return web.Response(
            text=json.dumps(self._cluster.keys.jwks(), separators=(",", ":")),
            content_type="application/jwk-set+json",
            headers={"Cache-Control": DISCOVERY_CACHE},
        )
