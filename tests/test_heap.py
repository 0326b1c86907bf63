"""The serving process's garbage collector: settled once started, its pauses in /metrics."""

from __future__ import annotations

import asyncio
import gc
import os
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


def _sample(metrics: Metrics, suffix: str, generation: int, **labels: str) -> float:
    value = metrics.registry.get_sample_value(
        f"lakegate_gc_pause_seconds_{suffix}", {"generation": str(generation), **labels}
    )
    assert value is not None
    return value


def test_each_collection_is_recorded_once_by_its_generation() -> None:
    """A full collection counts once under generation 2, with its duration, however often
    recording was started."""
    metrics = Metrics()
    heap.record_pauses()  # a second start must not count every collection twice
    count, total = _sample(metrics, "count", 2), _sample(metrics, "sum", 2)
    gc.collect(2)
    assert _sample(metrics, "count", 2) == count + 1
    assert _sample(metrics, "sum", 2) > total


def test_the_metrics_show_the_pauses_as_a_cumulative_histogram() -> None:
    """/metrics' histogram has a bucket per bound, cumulative to +Inf, which is the count."""
    metrics = Metrics()
    gc.collect(2)
    bounds = [repr(bound) for bound in heap.PAUSE_BUCKETS] + ["+Inf"]
    buckets = [_sample(metrics, "bucket", 2, le=bound) for bound in bounds]
    assert buckets == sorted(buckets)
    assert buckets[-1] == _sample(metrics, "count", 2) > 0
    assert "lakegate_gc_pause_seconds_count" in metrics.render().decode()
