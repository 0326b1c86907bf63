"""The serving process's garbage collector: how it is set once start-up is done, and what its
pauses cost, in numbers for /metrics.

Nearly everything a request allocates is freed by reference counting as the request ends;
the cyclic collector only has to find the few cycles (exceptions with their tracebacks,
futures and their callbacks). CPython starts a young collection each time 700 more
container objects are alive than at the last one, and a submit holds far more than that
while it runs: its body's dicts and lists, the response, the run record. So every few
requests a collection walked every in-flight request's objects and promoted them into the
older generations, whose collections walked them again. Measured with ``bench_gateway``
(32 workers, 6,000 submits), the collector took 34 µs of CPU per accepted submit with a
one-task spec and 194 µs with a 30-task one (12 KB); at ``YOUNG_THRESHOLD`` it ran at most
one collection in a one-task bench of 6,000 submits and 4-8 in a 30-task one, 3-6 µs per
submit. Cycles now wait longer to be found, so they hold more memory meanwhile: 1,500
refused submits of 128 KB each left the process at the same RSS (103-106 MiB) at either
threshold.

``PAUSES`` records every collection's generation and duration through ``gc.callbacks``, in
a prometheus histogram of its own: the collector is the process's, not an application's, so
every application's registry registers this one histogram.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

# What bench_gateway settled on (the module's docstring): 2,000 still left 151 µs per
# 30-task submit, 7,000 left 55 µs.
YOUNG_THRESHOLD = 10_000
PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
GENERATIONS = (0, 1, 2)


def settle() -> None:
    """Once start-up is done: collect, freeze what start-up built, raise the young threshold.

    What start-up built lives as long as the process: frozen, it is out of the collector's
    sight, so a full collection under load walks only what requests make (pauses of 30-90 ms
    were seen before). The older generations keep CPython's thresholds.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


PAUSES = Histogram(
    "lakegate_gc_pause_seconds",
    "Cyclic garbage collections of the gateway process and how long each held the "
    "interpreter, by generation (2 is the full collection).",
    ["generation"],
    buckets=PAUSE_BUCKETS,
    registry=None,
)
# Bound once: labels() takes the family's lock and builds a child, and a collection can start
# inside a scrape that holds that lock. A child's observe() takes only its values' locks,
# under which nothing is allocated that could start a collection.
_BY_GENERATION = {g: PAUSES.labels(generation=str(g)) for g in GENERATIONS}
_installed = False
_started = 0.0


def record_pauses() -> None:
    """Start recording collections in ``PAUSES``; a second call changes nothing."""
    global _installed
    if not _installed:
        _installed = True
        gc.callbacks.append(_on_collection)


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    # "start" and "stop" of one collection run on the thread that collects, and collections
    # never overlap, so one start time serves.
    global _started
    if phase == "start":
        _started = time.perf_counter()
    else:
        _BY_GENERATION[info["generation"]].observe(time.perf_counter() - _started)
