"""GET /v1/namespaces/{namespace}/quota: the namespace's limits, usage, queue, pause state.

Authorized like listing the namespace's runs (``runs.list``): whoever may see its runs may
see what holds them back.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.callers import authorize
from gateway.api.schemas import parse_namespace
from gateway.appkeys import QUOTA


async def get_quota(request: web.Request) -> web.Response:
    await authorize(request, request.match_info["namespace"], "runs.list")
    namespace = parse_namespace(request.match_info["namespace"])
    return web.json_response(await request.config_dict[QUOTA].report(namespace))
