"""A fake of lakegate's REST API (/v1) on a real loopback socket, for the CLI and client tests.

It keeps runs in memory and records every request. Each GET of a run moves it one step along
``progression``; POSTs can be made to fail (503 with Retry-After, or a dropped connection
after the run was created, as when an answer is lost on the way back).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

Step = tuple[str, str | None]

DEFAULT_PROGRESSION: tuple[Step, ...] = (
    ("SUBMITTING", None),
    ("PENDING", None),
    ("RUNNING", None),
    ("SUCCEEDED", None),
)
TIMESTAMP = "2030-01-01T00:00:00+00:00"
TERMINAL = frozenset(
    {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED", "SKIPPED", "INTERNAL_ERROR", "REJECTED"}
)


@dataclass
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any


@dataclass
class _FakeRun:
    data: dict[str, Any]
    steps: list[Step]
    history: list[dict[str, Any]] = field(default_factory=list)


class FakeGateway:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.progression: tuple[Step, ...] = DEFAULT_PROGRESSION
        self.fail_posts = 0
        self.fail_mode: Literal["503", "drop"] = "503"
        self.url = ""
        self._runs: dict[int, _FakeRun] = {}
        self._keys: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        # What GET .../quota answers, one view per request; the last one is repeated.
        self.quota_views: list[dict[str, Any]] = [{}]
        # What GET .../output answers for a run, beside the run's own fields.
        self.outputs: dict[int, dict[str, Any]] = {}

    # --- set-up used by tests ---------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/namespaces/{ns}/runs", self._submit)
        app.router.add_get("/v1/namespaces/{ns}/runs", self._list)
        app.router.add_get("/v1/namespaces/{ns}/runs/{id}", self._get)
        app.router.add_post("/v1/namespaces/{ns}/runs/{id}/cancel", self._cancel)
        app.router.add_get("/v1/namespaces/{ns}/runs/{id}/output", self._output)
        app.router.add_get("/v1/namespaces/{ns}/quota", self._quota)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def add_run(self, namespace: str, state: str, labels: dict[str, str] | None = None) -> int:
        """A run that exists already, staying in ``state``."""
        run = self._create(namespace, {"spec": {}, "labels": labels or {}}, state, [])
        run_id: int = run.data["id"]
        return run_id

    def posts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/runs")]

    def run_count(self) -> int:
        return len(self._runs)

    # --- the API ----------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> Any:
        body = await request.json() if request.can_read_body else None
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                list(request.query.items()),
                dict(request.headers),
                body,
            )
        )
        return body

    def _problem(self, status: int, title: str, detail: str, **headers: str) -> web.Response:
        return web.json_response(
            {
                "type": "about:blank",
                "title": title,
                "status": status,
                "detail": detail,
                "request_id": f"req-{next(self._request_ids)}",
            },
            status=status,
            content_type="application/problem+json",
            headers=headers,
        )

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        key = request.headers.get("Idempotency-Key", "")
        if key in self._keys:
            return web.json_response(self._runs[self._keys[key]].data, status=200)
        if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
            return self._problem(400, "Invalid request", "body.spec: a JSON object is required")
        if self.fail_posts and self.fail_mode == "503":
            self.fail_posts -= 1
            return self._problem(503, "Run ledger unavailable", "try again", **{"Retry-After": "0"})
        run = self._create(request.match_info["ns"], body, "QUEUED", list(self.progression))
        if key:
            self._keys[key] = run.data["id"]
        if self.fail_posts and self.fail_mode == "drop":
            self.fail_posts -= 1
            assert request.transport is not None
            request.transport.close()
        return web.json_response(run.data, status=202)

    async def _quota(self, request: web.Request) -> web.Response:
        await self._record(request)
        view = self.quota_views.pop(0) if len(self.quota_views) > 1 else self.quota_views[0]
        return web.json_response({"namespace": request.match_info["ns"], **view})

    async def _get(self, request: web.Request) -> web.Response:
        await self._record(request)
        run = self._find(request)
        if run is None:
            return self._run_not_found(request)
        if run.steps:
            state, message = run.steps.pop(0)
            run.history.append(
                {"from": run.data["state"], "to": state, "at": TIMESTAMP, "message": message}
            )
            run.data.update(state=state, state_message=message)
            if state not in ("QUEUED", "SUBMITTING") and run.data["databricks_run_id"] is None:
                run.data["databricks_run_id"] = 1000 + run.data["id"]
                run.data["run_page_url"] = f"https://dbc.example/#job/1/run/{run.data['id']}"
        return web.json_response({**run.data, "history": run.history})

    async def _cancel(self, request: web.Request) -> web.Response:
        await self._record(request)
        run = self._find(request)
        if run is None:
            return self._run_not_found(request)
        # As the gateway does: an ended run stays as it is, a queued one ends at once.
        if run.data["state"] in TERMINAL:
            return web.json_response(run.data, status=202)
        run.data["cancel_requested"] = True
        if run.data["state"] == "QUEUED":
            run.data.update(state="CANCELED", state_message="canceled before submission")
            run.steps = []
        else:
            run.steps = [("TERMINATING", None), ("CANCELED", "canceled by the caller")]
        return web.json_response(run.data, status=202)

    async def _output(self, request: web.Request) -> web.Response:
        await self._record(request)
        run = self._find(request)
        if run is None:
            return self._run_not_found(request)
        fields = ("id", "namespace", "state", "state_message", "databricks_run_id", "run_page_url")
        view = {key: run.data[key] for key in fields}
        return web.json_response({**view, "tasks": [], **self.outputs.get(run.data["id"], {})})

    async def _list(self, request: web.Request) -> web.Response:
        await self._record(request)
        states = set(request.query.getall("state", []))
        runs = [
            run.data
            for run in self._runs.values()
            if run.data["namespace"] == request.match_info["ns"]
            and (not states or run.data["state"] in states)
        ]
        start = int(request.query.get("cursor", "0"))
        limit = int(request.query.get("limit", "50"))
        page = runs[start : start + limit]
        more = start + limit < len(runs)
        return web.json_response(
            {"runs": page, "next_cursor": str(start + limit) if more else None}
        )

    # --- helpers ----------------------------------------------------------------------------

    def _create(
        self, namespace: str, body: dict[str, Any], state: str, steps: list[Step]
    ) -> _FakeRun:
        run_id = next(self._ids)
        run = _FakeRun(
            data={
                "id": run_id,
                "namespace": namespace,
                "state": state,
                "databricks_run_id": None,
                "run_page_url": None,
                "state_message": None,
                "created_at": TIMESTAMP,
                "updated_at": TIMESTAMP,
                "labels": body.get("labels") or {},
                "callback_url": body.get("callback_url"),
                "cancel_requested": False,
            },
            steps=steps,
        )
        self._runs[run_id] = run
        return run

    def _find(self, request: web.Request) -> _FakeRun | None:
        run_id = request.match_info["id"]
        run = self._runs.get(int(run_id)) if run_id.isdigit() else None
        if run is None or run.data["namespace"] != request.match_info["ns"]:
            return None
        return run

    def _run_not_found(self, request: web.Request) -> web.Response:
        detail = f"no run {request.match_info['id']} in namespace {request.match_info['ns']}"
        return self._problem(404, "Run not found", detail)
