"""Lag from a run's terminal state to its webhook delivered, at 200 completions per second.

    .venv/bin/python tests/bench/bench_webhooks.py [--rate 200] [--seconds 10]

In one process, on loopback: a SQLite ledger, the real ``Dispatcher`` (default settings but
loopback allowed) with its guarded session, and a receiver that verifies every signature with
``standardwebhooks``. A producer ends ``--rate`` runs per second (each a ``Store.transition``
to SUCCEEDED with its run.completed event, as the ledger writes it) for ``--seconds``; the lag
of each is from its transition's timestamp to the receiver's verified arrival. Prints p50,
p99 and max lag, and the process CPU per delivery: an upper bound for the dispatcher's, since
the producer, the ledger thread and the receiver (with its verification) share the process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from standardwebhooks.webhooks import Webhook  # noqa: E402

from gateway.metrics import Metrics  # noqa: E402
from gateway.model import RunState  # noqa: E402
from gateway.runs.specs import completed_event  # noqa: E402
from gateway.runs.types import utcnow  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.store.sqlite import SqliteStore  # noqa: E402
from gateway.webhooks.dispatcher import Dispatcher  # noqa: E402
from gateway.webhooks.guard import Guard  # noqa: E402
from gateway.webhooks.keys import SigningKeys  # noqa: E402
from gateway.webhooks.resolver import GuardedResolver  # noqa: E402
from tests.runs.conftest import new_run  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"b" * 32).decode()


async def _receiver(arrivals: dict[int, float]) -> tuple[web.AppRunner, str]:
    hook = Webhook(SECRET)

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        hook.verify(body, dict(request.headers), json_parse=False)
        arrivals.setdefault(json.loads(body)["data"]["id"], time.time())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"


async def _produce(store: SqliteStore, rate: int, seconds: float, ended: dict[int, float]) -> None:
    start = time.monotonic()
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(start + n / rate - time.monotonic(), 0))
        run, _ = await store.create_run(new_run(), utcnow())
        now = utcnow()
        await store.transition(
            run.id, RunState.SUCCEEDED, expected={run.state}, now=now,
            outbox_event=completed_event(replace(run, state=RunState.SUCCEEDED), at=now),
        )  # fmt: skip
        ended[run.id] = now.timestamp()


async def main(rate: int, seconds: float) -> None:
    arrivals: dict[int, float] = {}
    ended: dict[int, float] = {}
    runner, url = await _receiver(arrivals)
    settings = Settings.model_validate(
        {
            "webhooks": {"allow_http": True, "allow_networks": ["127.0.0.0/8"]},
            "tenants": {"defaults": {"webhooks": {"url": url, "secret_value": SECRET}}},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "ledger.db")
        await store.open()
        guard = Guard.of(["127.0.0.0/8"], allow_http=True)
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(guard))
        async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
            dispatcher = Dispatcher(
                store=store, session=session, settings=settings,
                keys=SigningKeys(None, {}), metrics=Metrics(), clock=utcnow,
            )  # fmt: skip
            task = asyncio.create_task(dispatcher.run_forever())
            cpu0, wall0 = time.process_time(), time.monotonic()
            await _produce(store, rate, seconds, ended)
            for _ in range(600):  # at most 30 s for the last deliveries
                if len(arrivals) >= len(ended):
                    break
                await asyncio.sleep(0.05)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await store.close()
    await runner.cleanup()
    lags = sorted((arrivals[i] - ended[i]) * 1000 for i in ended if i in arrivals)
    q = statistics.quantiles(lags, n=100)
    print(f"completions: {len(ended)} at {rate}/s over {seconds:g} s; delivered {len(lags)}")
    print(
        f"lag terminal -> delivered: p50 {q[49]:.1f} ms  p99 {q[98]:.1f} ms  max {lags[-1]:.1f} ms"
    )
    print(
        f"process CPU per delivery: {cpu / max(len(lags), 1) * 1000:.2f} ms "
        f"({cpu / wall * 100:.0f}% of one core; includes producer and receiver)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.seconds))
