"""The tenant doctor's routes.

``GET /v1/namespaces/{namespace}/identity`` walks the namespace's path (``gateway.doctor``) and
answers its report, 200 whether or not a step failed (the report says which). It is authorized
like the namespace's other endpoints: whoever may act for the namespace may check it.

``GET /v1/namespaces`` lists every configured or discovered namespace with its identity kind
and state, without minting or fetching a token. Any authenticated caller may ask, and it sees
exactly the namespaces it may act for (its own, those granted, every one with a grant for all
or ``callers.methods: [none]``), so the list reveals no namespace the caller could not check.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.callers import authenticate, authorize
from gateway.api.schemas import parse_namespace
from gateway.appkeys import CALLERS, DOCTOR, QUOTA
from gateway.doctor import Doctor
from gateway.errors import LakegateError


class DoctorUnavailable(LakegateError):
    """The gateway runs with an identity resolver the doctor cannot explain (an embedder's).

    404, not 501: no request can reach a 5xx, and for this gateway the resource does not
    exist; a retry would not heal it."""

    status = 404
    title = "Tenant doctor unavailable"


def _doctor(request: web.Request) -> Doctor:
    doctor = request.config_dict.get(DOCTOR)
    if doctor is None:
        raise DoctorUnavailable("This gateway was started without the tenant doctor.")
    return doctor


async def check_identity(request: web.Request) -> web.Response:
    await authorize(request, request.match_info["namespace"], "identity.check")
    namespace = parse_namespace(request.match_info["namespace"])
    report = await _doctor(request).check(namespace, request.config_dict.get(QUOTA))
    return web.json_response(report.view())


async def list_namespaces(request: web.Request) -> web.Response:
    caller = authenticate(request, "namespaces.list")
    gate = request.config_dict[CALLERS]

    async def allowed(namespace: str) -> bool:
        return bool(await gate.allows(caller, namespace))

    # Filtered before they are read: a namespace the caller may not see costs no Secret read.
    tenants = await _doctor(request).tenants(allowed)
    return web.json_response({"namespaces": [t.view() for t in tenants]})


def setup_doctor_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/v1/namespaces", list_namespaces, name="list_namespaces", allow_head=False)
    router.add_get(
        "/v1/namespaces/{namespace:[^/]+}/identity",
        check_identity,
        name="check_identity",
        allow_head=False,
    )
