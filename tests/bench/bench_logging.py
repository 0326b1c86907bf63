"""Cost of one log event on the request path (issue 16).

    .venv/bin/python tests/bench/bench_logging.py [--requests 20000] [--secrets 200]
        [--repeats 5] [--out /dev/null]

Logging is configured as production configures it (``gateway.logs.configure(level="info",
fmt="json")``), with the process's stderr pointed at ``--out`` before that, so the events are
rendered and written as they would be, minus a terminal. The process-wide ``SecretRegistry``
holds ``--secrets`` values shaped like the credentials a gateway holds (caller JWTs, PATs,
OAuth secrets, client ids shown masked).

Each simulated request binds a fresh request id and a namespace (as ``request_context`` does),
then emits, through the module-level loggers the gateway itself uses (the cost of binding
and releasing that context is printed apart, as ``bound() block``):

- ``caller_authorized`` (``gateway.api.callers.audit``), the fields ``authorize`` gives it;
- ``run_submitted`` (``gateway.runs.ledger.log``) on every ``--submit-every``-th request;
- ``http_request`` (``gateway.api.middlewares.log``), the fields the access log gives it.

Each call is timed alone (perf_counter_ns, with the timer's own cost measured and taken off).
Two figures are printed per event, each the median over ``--repeats`` runs: the median call
(robust to other processes taking the core, as they do on a shared machine) and the mean call
(which also carries the rare costly ones, such as a cache refilling). Subjects, routes and
namespaces come from small pools, as on a real gateway; request ids are unique. The same
events are written through the standard library too (``--stdlib``), the path aiohttp's and
asyncio's records take.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

SUBJECTS = [f"system:serviceaccount:team-{i:02d}:etl" for i in range(20)]
NAMESPACES = [f"team-{i:02d}" for i in range(20)]
ROUTES = [
    ("GET", "/v1/namespaces/{namespace}/runs/{run_id}", "runs.get"),
    ("GET", "/v1/namespaces/{namespace}/runs", "runs.list"),
    ("POST", "/v1/namespaces/{namespace}/runs", "runs.submit"),
]


def _fill_registry(count: int) -> None:
    from gateway import secrets_registry

    secrets_registry.REGISTRY.forget_all()
    for i in range(count):
        kind = i % 4
        if kind == 0:
            value = f"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ{i:08d}fQ.c2lnbmF0dXJl{i:012d}"
            secrets_registry.remember(value)
        elif kind == 1:
            secrets_registry.remember(f"dapi{i:032x}")
        elif kind == 2:
            secrets_registry.remember(f"dose{i:08d}ABCDEFabcdef0123456789")
        else:
            client_id = f"{i:08x}-0000-4000-8000-{i:012x}"
            secrets_registry.remember_shown(client_id, client_id[:4] + "..." + client_id[-4:])


def _timer_cost() -> int:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(20_000):
        t0 = clock()
        samples.append(clock() - t0)
    return int(statistics.median(samples))


def _one_run(requests: int, submit_every: int, overhead: int) -> dict[str, tuple[float, float]]:
    from gateway.api.callers import audit
    from gateway.api.middlewares import log as access
    from gateway.logs import bound
    from gateway.runs.ledger import log as ledger

    clock = time.perf_counter_ns
    spent: dict[str, list[int]] = {"caller_authorized": [], "run_submitted": [], "http_request": []}

    def timed(name: str, call: Callable[..., Any], **fields: Any) -> None:
        t0 = clock()
        call(name, **fields)
        spent[name].append(clock() - t0 - overhead)

    for i in range(requests):
        namespace = NAMESPACES[i % len(NAMESPACES)]
        subject = SUBJECTS[i % len(SUBJECTS)]
        method, route, action = ROUTES[i % len(ROUTES)]
        with bound(request_id=os.urandom(16).hex(), namespace=namespace):
            timed(
                "caller_authorized",
                audit.info,
                subject=subject,
                method="kubernetes",
                namespace=namespace,
                action=action,
                outcome="allowed",
                reason="own namespace",
            )
            if i % submit_every == 0:
                timed(
                    "run_submitted",
                    ledger.info,
                    run_id=1000 + i,
                    namespace=namespace,
                    remote_id=700_000_000 + i,
                )
            timed(
                "http_request",
                access.info,
                method=method,
                route=route,
                status=200,
                duration_ms=round(0.5 + (i % 97) / 100, 3),
                caller=subject,
            )
    return {
        name: (statistics.median(times) / 1000, statistics.fmean(times) / 1000)
        for name, times in spent.items()
    }


def _bind_run(requests: int, overhead: int) -> float:
    """Median µs to bind and release one request's context, as request_context does."""
    from gateway.logs import bound

    clock = time.perf_counter_ns
    times = []
    for i in range(requests):
        context = {"request_id": os.urandom(16).hex(), "namespace": NAMESPACES[i % 20]}
        t0 = clock()
        with bound(**context):
            pass
        times.append(clock() - t0 - overhead)
    return statistics.median(times) / 1000


def _stdlib_run(requests: int, overhead: int) -> float:
    import logging

    logger = logging.getLogger("aiohttp.access")
    clock = time.perf_counter_ns
    total = 0
    for i in range(requests):
        t0 = clock()
        logger.info('%s "%s %s" %s', "127.0.0.1", "GET", f"/v1/namespaces/team/runs/{i}", 200)
        total += clock() - t0 - overhead
    return total / requests / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--secrets", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--submit-every", type=int, default=3)
    parser.add_argument("--out", default=os.devnull)
    parser.add_argument("--stdlib", action="store_true")
    args = parser.parse_args()

    report = sys.stdout
    # Production's configure() binds the process's stderr: point it at --out first.
    sys.stderr = open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    from gateway import logs

    logs.configure(level="info", fmt="json")
    _fill_registry(args.secrets)
    overhead = _timer_cost()
    _one_run(min(2000, args.requests), args.submit_every, overhead)  # warm: caches, imports
    runs = [_one_run(args.requests, args.submit_every, overhead) for _ in range(args.repeats)]
    print(
        f"python {sys.version.split()[0]}, {args.requests} requests x {args.repeats} runs, "
        f"{args.secrets} secrets held, timer overhead {overhead} ns taken off",
        file=report,
    )
    for name in runs[0]:
        medians = [run[name][0] for run in runs]
        means = [run[name][1] for run in runs]
        print(
            f"{name:>18}: median call {statistics.median(medians):6.2f} µs, "
            f"mean call {statistics.median(means):6.2f} µs "
            f"(means {min(means):.2f} to {max(means):.2f})",
            file=report,
        )
    binds = [_bind_run(args.requests, overhead) for _ in range(args.repeats)]
    print(f"{'bound() block':>18}: median {statistics.median(binds):6.2f} µs", file=report)
    if args.stdlib:
        values = [_stdlib_run(args.requests, overhead) for _ in range(args.repeats)]
        print(f"{'stdlib record':>18}: {statistics.median(values):6.2f} µs/event", file=report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
