"""A thin Jobs API caller over a real aiohttp session, for the emulator's HTTP tests."""

from __future__ import annotations

import json as json_module
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from tests.fixtures.databricks_emulator import DatabricksEmulator

NOTEBOOK_TASK = {"task_key": "main", "notebook_task": {"notebook_path": "/Shared/etl"}}
CLUSTER_ID = "0101-123456-abcdefgh"
_DEFAULT = object()


def notebook(key: str = "main", **params: str) -> dict[str, Any]:
    """A notebook task; ``params`` become its base_parameters."""
    task: dict[str, Any] = {"task_key": key, "notebook_task": {"notebook_path": "/Shared/etl"}}
    if params:
        task["notebook_task"]["base_parameters"] = params
    return task


def single_task(run_name: str = "classic", **params: str) -> dict[str, Any]:
    """A runs/submit body in the single-task shape: a top-level notebook task, no tasks[]."""
    notebook: dict[str, Any] = {"notebook_path": "/Shared/etl"}
    if params:
        notebook["base_parameters"] = params
    return {"run_name": run_name, "existing_cluster_id": CLUSTER_ID, "notebook_task": notebook}


@dataclass
class Reply:
    status: int
    body: Any
    headers: CIMultiDictProxy[str]


@dataclass
class Api:
    emulator: DatabricksEmulator
    http: aiohttp.ClientSession
    version: str = "2.2"

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: Any = _DEFAULT,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: str | None = None,
    ) -> Reply:
        """``path`` under /api/<version>/jobs/ unless it starts with '/'."""
        url = self.emulator.url + (
            path if path.startswith("/") else f"/api/{self.version}/jobs/{path}"
        )
        headers = (
            {} if token is None else self.emulator.headers(None if token is _DEFAULT else token)
        )
        async with self.http.request(
            method, url, headers=headers, params=params, json=json, data=data
        ) as resp:
            raw = await resp.read()
            try:
                body = json_module.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            return Reply(resp.status, body, resp.headers)

    async def submit(self, token: Any = _DEFAULT, **body: Any) -> int:
        body.setdefault("tasks", [NOTEBOOK_TASK])
        reply = await self.call("POST", "runs/submit", json=body, token=token)
        assert reply.status == 200, reply.body
        run_id: int = reply.body["run_id"]
        return run_id

    async def get(self, run_id: int, **params: Any) -> dict[str, Any]:
        reply = await self.call("GET", "runs/get", params={"run_id": run_id, **params})
        assert reply.status == 200, reply.body
        run: dict[str, Any] = reply.body
        return run

    async def admin(self, method: str, path: str, body: Any = None) -> Reply:
        return await self.call(method, f"/emulator/{path}", json=body, token=None)


@asynccontextmanager
async def open_api(emulator: DatabricksEmulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as http:
        yield Api(emulator, http)
