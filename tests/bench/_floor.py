"""The least an accepted submit can cost here: a pass-through with a durable ledger, no more.

    .venv/bin/python tests/bench/_floor.py --port P --emulator URL --ledger PATH --token T

``bench_floor.py`` starts this as a process of its own beside the gateway and drives both
with the same load. It does what every accepted submit needs and nothing else, each the way
the gateway does it, so that the gateway's figure above this one is what lakegate's own work
costs (tenancy, identities, quotas, validation, logs, metrics, the run's history):

- POST /runs: read the JSON body, write a SUBMITTING row on the ledger's thread (group
  commit, SQLite WAL, synchronous=FULL), send runs/submit to the emulator on one aiohttp
  session with a bearer token and an idempotency token, write the Databricks run id (group
  commit again), answer 201 with the row as JSON.
- GET /runs/{id}: read the row on the ledger's thread and answer it as JSON.

No namespaces, no identities, no validation, no logs, no metrics, no retries: this is a
measuring instrument, not a gateway; it must never be pointed at anything but the emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    spec TEXT NOT NULL,
    databricks_run_id INTEGER
)
"""
Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]
Outcome = tuple[asyncio.Future[Any], bool, Any]
LEDGER: web.AppKey[Ledger] = web.AppKey("ledger")
UPSTREAM = web.AppKey("upstream", aiohttp.ClientSession)
CONFIG = web.AppKey("config", argparse.Namespace)


class Ledger:
    """One SQLite connection on one thread; the jobs queued meanwhile share one commit."""

    def __init__(self, path: str) -> None:
        self._queue: queue.SimpleQueue[list[Job] | None] = queue.SimpleQueue()
        self._outgoing: list[Job] = []
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._serve, args=(path,), daemon=True)
        self._thread.start()

    def run(self, body: Callable[[sqlite3.Connection], Any]) -> asyncio.Future[Any]:
        future = self._loop.create_future()
        if not self._outgoing:
            self._loop.call_soon(self._flush)  # one hand-over to the thread per loop turn
        self._outgoing.append((body, future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _flush(self) -> None:
        self._queue.put(self._outgoing)
        self._outgoing = []

    def _serve(self, path: str) -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(SCHEMA)
        closing = False
        while not closing:
            batch: list[Job] = []
            taken = self._queue.get()
            with contextlib.suppress(queue.Empty):
                while taken is not None:
                    batch.extend(taken)
                    taken = self._queue.get_nowait()
            closing = taken is None  # jobs queued before close() still run
            self._loop.call_soon_threadsafe(_settle, _commit(conn, batch))
        conn.close()


def _commit(conn: sqlite3.Connection, batch: list[Job]) -> list[Outcome]:
    """Every job of ``batch`` in one transaction; a failed BEGIN or COMMIT fails them all."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        outcomes: list[Outcome] = []
        for body, future in batch:
            try:
                outcomes.append((future, True, body(conn)))
            except Exception as exc:  # a measuring instrument: the caller sees it
                outcomes.append((future, False, exc))
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return [(future, False, exc) for _body, future in batch]
    return outcomes


def _settle(outcomes: list[Outcome]) -> None:
    for future, ok, value in outcomes:
        if not future.done():
            future.set_result(value) if ok else future.set_exception(value)


def _row(cursor: sqlite3.Cursor) -> dict[str, Any]:
    row = cursor.fetchone()
    return {"id": row[0], "state": row[1], "databricks_run_id": row[2]}


async def submit(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    key, spec = request.headers["Idempotency-Key"], body["spec"]
    ledger, config = request.app[LEDGER], request.app[CONFIG]
    run = await ledger.run(
        lambda conn: _row(
            conn.execute(
                "INSERT INTO runs (idempotency_key, state, spec) VALUES (?, 'SUBMITTING', ?) "
                "RETURNING id, state, databricks_run_id",
                (key, orjson.dumps(spec).decode()),
            )
        )
    )
    payload = {**spec, "idempotency_token": f"floor-{run['id']}"}
    async with request.app[UPSTREAM].post(
        f"{config.emulator}/api/2.2/jobs/runs/submit",
        data=orjson.dumps(payload),
        headers={"Authorization": f"Bearer {config.token}", "Content-Type": "application/json"},
    ) as resp:
        remote = orjson.loads(await resp.read())["run_id"]
    run = await ledger.run(
        lambda conn: _row(
            conn.execute(
                "UPDATE runs SET state = 'PENDING', databricks_run_id = ? WHERE id = ? "
                "RETURNING id, state, databricks_run_id",
                (remote, run["id"]),
            )
        )
    )
    return web.Response(body=orjson.dumps(run), status=201, content_type="application/json")


async def get(request: web.Request) -> web.Response:
    run_id = int(request.match_info["run_id"])
    run = await request.app[LEDGER].run(
        lambda conn: _row(
            conn.execute("SELECT id, state, databricks_run_id FROM runs WHERE id = ?", (run_id,))
        )
    )
    return web.Response(body=orjson.dumps(run), content_type="application/json")


async def ready(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def app(config: argparse.Namespace) -> web.Application:
    application = web.Application()
    application[CONFIG] = config

    async def resources(application: web.Application) -> AsyncIterator[None]:
        application[LEDGER] = Ledger(config.ledger)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
            application[UPSTREAM] = session
            yield
        application[LEDGER].close()

    application.cleanup_ctx.append(resources)
    application.router.add_post("/runs", submit)
    application.router.add_get("/runs/{run_id}", get)
    application.router.add_get("/readyz", ready)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--token", required=True)
    config = parser.parse_args()
    web.run_app(app(config), host="127.0.0.1", port=config.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
