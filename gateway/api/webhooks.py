"""The /v1 webhook handlers: dead events, redelivery, and endpoints disabled by a 410.

``GET .../webhooks/dead`` lists the namespace's dead events, newest first (``limit``,
``before`` for the next page); ``POST .../webhooks/redeliver`` with ``{"ids": [...]}`` or
``{"all": true}`` makes them due again with the same webhook-id; ``GET .../webhooks/endpoints``
lists the disabled endpoints and ``POST .../webhooks/endpoints/enable`` with ``{"url": ...}``
re-enables one. Every handler authorizes first, like the run handlers.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.callers import authorize
from gateway.api.jsonbody import strict_loads
from gateway.api.middlewares import read_body
from gateway.api.schemas import parse_limit, parse_namespace, parse_run_id
from gateway.api.views import rfc3339
from gateway.appkeys import WEBHOOKS
from gateway.errors import InvalidRequest
from gateway.store.base import DisabledEndpoint, OutboxEntry
from gateway.webhooks.signing import webhook_id

PREFIX = "/v1/namespaces/{namespace:[^/]+}/webhooks"


def setup_webhook_routes(app: web.Application) -> None:
    router = app.router
    router.add_get(PREFIX + "/dead", list_dead, name="list_dead_webhooks", allow_head=False)
    router.add_post(PREFIX + "/redeliver", redeliver, name="redeliver_webhooks")
    router.add_get(
        PREFIX + "/endpoints", list_disabled, name="list_disabled_endpoints", allow_head=False
    )
    router.add_post(PREFIX + "/endpoints/enable", enable, name="enable_endpoint")


def dead_view(entry: OutboxEntry, installation_id: str) -> dict[str, Any]:
    return {
        "id": entry.id,
        "webhook_id": webhook_id(entry.id, installation_id),
        "run_id": entry.run_id,
        "type": entry.event_type,
        "created_at": rfc3339(entry.created_at),
        "dead_at": rfc3339(entry.dead_at) if entry.dead_at else None,
        "attempts": entry.attempts,
        "last_status": entry.last_status,
        "last_error": entry.last_error,
        "endpoint": entry.endpoint,
    }


def endpoint_view(endpoint: DisabledEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "disabled_at": rfc3339(endpoint.disabled_at),
        "reason": endpoint.reason,
    }


async def list_dead(request: web.Request) -> web.Response:
    await authorize(request, request.match_info["namespace"], "webhooks.list")
    namespace = parse_namespace(request.match_info["namespace"])
    limit = parse_limit(request.query.getall("limit", []))
    before = request.query.get("before")
    before_id = parse_run_id(before) if before is not None else None
    admin = request.config_dict[WEBHOOKS]
    entries = await admin.dead(namespace, limit=limit + 1, before_id=before_id)
    page, more = entries[:limit], len(entries) > limit
    return web.json_response(
        {
            "events": [dead_view(e, admin.installation_id) for e in page],
            "next_before": page[-1].id if more else None,
        }
    )


async def _json(request: web.Request) -> Any:
    raw = await read_body(request)
    try:
        return strict_loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest("The request body is not JSON.", field="body") from exc


def _redeliver_ids(body: Any) -> list[int] | None:
    if isinstance(body, dict) and set(body) == {"all"} and body["all"] is True:
        return None
    ids = body.get("ids") if isinstance(body, dict) and set(body) == {"ids"} else None
    if (
        isinstance(ids, list)
        and 0 < len(ids) <= 1000
        and all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids)
    ):
        return ids
    raise InvalidRequest(
        'Send {"ids": [<dead event id>, ...]} (1 to 1000 ids) or {"all": true}.', field="ids"
    )


async def redeliver(request: web.Request) -> web.Response:
    await authorize(request, request.match_info["namespace"], "webhooks.redeliver")
    namespace = parse_namespace(request.match_info["namespace"])
    ids = _redeliver_ids(await _json(request))
    redelivered = await request.config_dict[WEBHOOKS].redeliver(namespace, ids)
    return web.json_response({"redelivered": redelivered}, status=202)


async def list_disabled(request: web.Request) -> web.Response:
    await authorize(request, request.match_info["namespace"], "webhooks.list")
    namespace = parse_namespace(request.match_info["namespace"])
    endpoints = await request.config_dict[WEBHOOKS].disabled(namespace)
    return web.json_response({"disabled": [endpoint_view(e) for e in endpoints]})


async def enable(request: web.Request) -> web.Response:
    await authorize(request, request.match_info["namespace"], "webhooks.enable")
    namespace = parse_namespace(request.match_info["namespace"])
    body = await _json(request)
    url = body.get("url") if isinstance(body, dict) and set(body) == {"url"} else None
    if not isinstance(url, str) or not url:
        raise InvalidRequest('Send {"url": "<the disabled endpoint>"}.', field="url")
    await request.config_dict[WEBHOOKS].enable(namespace, url)
    return web.json_response({"enabled": url})
