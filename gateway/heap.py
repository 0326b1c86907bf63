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
one-task spec and 194 µs with a 30-task one (12 KB); at ``YOUNG_THRESHOLD`` it ran no
collection at all in the one-task bench and 8 in the 30-task one, 3 µs per submit. Cycles
now wait longer to be found, so they hold more memory meanwhile: 1,500 refused submits of
128 KB each left the process at the same RSS (103-106 MiB) at either threshold.

``GcPauses`` records every collection's generation and duration through ``gc.callbacks``;
one recorder serves the process (the collector is the process's, not an application's), and
each application's registry reads it through ``PauseCollector``.
"""

from __future__ import annotations

import bisect
import gc
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

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


Tally = tuple[tuple[int, ...], float]


def tallied(tally: Tally, seconds: float) -> Tally:
    """``tally`` (the count in each bucket, and the sum) with one more pause of ``seconds``."""
    counts, total = tally
    # The first bucket whose bound is at least the pause; past every bound, the last.
    index = bisect.bisect_left(PAUSE_BUCKETS, seconds)
    return (*counts[:index], counts[index] + 1, *counts[index + 1 :]), total + seconds


class GcPauses:
    """Collections and their durations by generation, from ``gc.callbacks``.

    No lock: the callbacks of one collection run on the thread that collects, and never
    during another collection; each generation's tally is replaced whole, one dict item
    assignment, so a scrape reads a count and a sum of the same collections. A lock here
    could deadlock: a scrape's own allocation may start a collection while it holds it.
    """

    def __init__(self) -> None:
        self._started = 0.0
        empty = ((0,) * (len(PAUSE_BUCKETS) + 1), 0.0)
        self._tally: dict[int, Tally] = dict.fromkeys(GENERATIONS, empty)
        self._installed = False

    def install(self) -> None:
        """Start recording; a second call changes nothing."""
        if not self._installed:
            self._installed = True
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        """Stop recording; what was recorded stays."""
        if self._installed:
            self._installed = False
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        self._tally[generation] = tallied(
            self._tally[generation], time.perf_counter() - self._started
        )

    def snapshot(self) -> dict[int, Tally]:
        """Per generation: the count in each bucket (the last past every bound), and the sum."""
        return dict(self._tally)


PAUSES = GcPauses()


class PauseCollector(Collector):
    """``lakegate_gc_pause_seconds``, read from ``PAUSES`` at each scrape."""

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "lakegate_gc_pause_seconds",
            "Cyclic garbage collections of the gateway process and how long each held the "
            "interpreter, by generation (2 is the full collection).",
            labels=["generation"],
        )
        for generation, (counts, total) in PAUSES.snapshot().items():
            cumulative, running = [], 0
            for bound, count in zip((*PAUSE_BUCKETS, float("inf")), counts, strict=True):
                running += count
                cumulative.append((_bound_text(bound), running))
            family.add_metric([str(generation)], cumulative, total)
        yield family


def _bound_text(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
