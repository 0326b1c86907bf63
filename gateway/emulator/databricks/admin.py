"""The emulator's own API under /emulator/: faults, clock, runs, stats, reset.

Not part of Databricks' API and not authenticated: tests and the demo drive the emulator
through it. Identity's admin routes live beside it, under /emulator/identity/.

    POST   /emulator/faults          FaultSpec JSON -> {"id": "fault-1"}
    GET    /emulator/faults          {"faults": [...]}
    DELETE /emulator/faults          clear every rule, release hung requests
    DELETE /emulator/faults/{id}     remove one rule
    POST   /emulator/clock/advance   {"seconds": N} -> {"now_ms": ..., "offset_seconds": ...}
    GET    /emulator/clock           {"now_ms": ..., "offset_seconds": ...}
    GET    /emulator/runs            every run ever created, with its principal and token
    GET    /emulator/stats           request counts by method, route and status; run counts
    POST   /emulator/reset           forget runs, faults, counts (identities stay)
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.emulator.databricks.faults import FaultSpec
from gateway.emulator.databricks.workspace import Workspace
from gateway.logs import get_logger

log = get_logger(__name__)

_M = TypeVar("_M", bound=BaseModel)


class _Advance(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seconds: float = Field(ge=0, allow_inf_nan=False)


def _bad_request(message: str, **extra: Any) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=json.dumps({"error": message, **extra}), content_type="application/json"
    )


async def _parse(request: web.Request, model: type[_M]) -> _M:
    try:
        return model.model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        raise _bad_request("invalid request body", errors=errors) from None


class AdminApi:
    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/emulator/faults", self.add_fault),
            web.get("/emulator/faults", self.list_faults),
            web.delete("/emulator/faults", self.clear_faults),
            web.delete("/emulator/faults/{fault_id}", self.remove_fault),
            web.post("/emulator/clock/advance", self.advance),
            web.get("/emulator/clock", self.clock),
            web.get("/emulator/runs", self.runs),
            web.get("/emulator/stats", self.stats),
            web.post("/emulator/reset", self.reset),
        ]

    async def add_fault(self, request: web.Request) -> web.Response:
        spec = await _parse(request, FaultSpec)
        return web.json_response({"id": self._ws.faults.add(spec)})

    async def list_faults(self, _request: web.Request) -> web.Response:
        return web.json_response({"faults": self._ws.faults.rules()})

    async def clear_faults(self, _request: web.Request) -> web.Response:
        cleared = len(self._ws.faults.rules())
        self._ws.faults.clear()
        log.info("emulator_faults_cleared", count=cleared)
        return web.json_response({"cleared": cleared})

    async def remove_fault(self, request: web.Request) -> web.Response:
        fault_id = request.match_info["fault_id"]
        if not self._ws.faults.remove(fault_id):
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"no fault {fault_id}"}), content_type="application/json"
            )
        return web.json_response({"removed": fault_id})

    async def advance(self, request: web.Request) -> web.Response:
        body = await _parse(request, _Advance)
        if not math.isfinite(body.seconds):
            raise _bad_request("seconds must be finite")
        self._ws.clock.advance(body.seconds)
        log.info("emulator_clock_advanced", seconds=body.seconds)
        return await self.clock(request)

    async def clock(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"now_ms": self._ws.now_ms(), "offset_seconds": self._ws.clock.offset}
        )

    async def runs(self, _request: web.Request) -> web.Response:
        return web.json_response({"runs": self._ws.run_summaries()})

    async def stats(self, _request: web.Request) -> web.Response:
        return web.json_response(self._ws.stats_dict())

    async def reset(self, _request: web.Request) -> web.Response:
        self._ws.reset()
        log.info("emulator_reset")
        return web.json_response({})
