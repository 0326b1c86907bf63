"""The serving process's garbage collector: settled once started, its pauses in /metrics."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import signal
from collections.abc import Iterator

import pytest
from aiohttp import web

from gateway import heap
from gateway.metrics import Metrics
from gateway.serving import Listener, serve


@pytest.fixture
def collector_state() -> Iterator[None]:
    """Whatever a test does to the collector's thresholds and frozen objects is undone."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector_state")
def test_settle_freezes_what_exists_and_raises_the_young_threshold() -> None:
    """After settle(), start-up's objects are frozen and only the young threshold moved."""
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    heap.settle()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, 10, 10)


@pytest.mark.usefixtures("collector_state")
async def test_serve_settles_the_heap_once_its_sites_are_up() -> None:
    """``serve`` settles the heap after start-up, and serves with it settled."""
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    seen: list[tuple[int, int, int]] = []
    loop = asyncio.get_running_loop()

    def look_and_stop() -> None:
        # Runs once serve() awaits its stop: after the settling and its signal handlers.
        seen.append(gc.get_threshold())
        os.kill(os.getpid(), signal.SIGTERM)

    await asyncio.wait_for(
        serve(
            Listener(web.Application(), "127.0.0.1", 0),
            shutdown_timeout=1.0,
            started=lambda: loop.call_soon(look_and_stop),
        ),
        10,
    )
    assert seen == [(heap.YOUNG_THRESHOLD, 10, 10)]
    assert gc.get_freeze_count() > 0


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [
        (0.0001, 0),
        (0.0005, 0),  # a bound holds the pauses equal to it, as Prometheus' "le" reads
        (0.0006, 1),
        (0.3, len(heap.PAUSE_BUCKETS) - 1),
        (5.0, len(heap.PAUSE_BUCKETS)),  # past every bound: +Inf only
    ],
)
def test_a_pause_is_counted_in_the_first_bucket_that_holds_it(seconds: float, bucket: int) -> None:
    """The tally of a generation grows by one in the right bucket and by the pause's length."""
    empty = ((0,) * (len(heap.PAUSE_BUCKETS) + 1), 0.0)
    counts, total = heap.tallied(empty, seconds)
    assert counts == tuple(1 if i == bucket else 0 for i in range(len(counts)))
    assert total == seconds


def test_each_collection_is_recorded_by_its_generation() -> None:
    """A recorder counts a full collection under generation 2 with its duration."""
    pauses = heap.GcPauses()
    pauses.install()
    pauses.install()  # a second install must not count every collection twice
    try:
        before = pauses.snapshot()
        gc.collect(2)
        after = pauses.snapshot()
    finally:
        pauses.uninstall()
    assert sum(after[2][0]) - sum(before[2][0]) == 1
    assert after[2][1] > before[2][1]
    gc.collect(2)
    assert pauses.snapshot() == after  # uninstalled: no longer recording


def _series(text: str, generation: int) -> dict[str, float]:
    found: dict[str, float] = {}
    pattern = re.compile(
        r'^lakegate_gc_pause_seconds_(bucket|count|sum)\{(?:le="([^"]+)",)?'
        rf'generation="{generation}"(?:,le="([^"]+)")?\}} (\S+)$'
    )
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            kind, le_first, le_last, value = match.groups()
            found[kind if kind != "bucket" else f"le={le_first or le_last}"] = float(value)
    return found


def test_the_metrics_show_the_process_collections() -> None:
    """/metrics' histogram grows with a full collection, its buckets cumulative to +Inf."""
    metrics = Metrics()
    before = _series(metrics.render().decode(), 2)
    gc.collect(2)
    after = _series(metrics.render().decode(), 2)
    assert after["count"] == before["count"] + 1
    assert after["sum"] > before["sum"]
    buckets = [after[f"le={bound!r}"] for bound in heap.PAUSE_BUCKETS] + [after["le=+Inf"]]
    assert buckets == sorted(buckets)
    assert buckets[-1] == after["count"]
