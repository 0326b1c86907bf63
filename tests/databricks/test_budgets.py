"""FairPacer and RequestBudgets: spacing, round-robin between namespaces, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from gateway.databricks.budgets import FairPacer, RequestBudgets, acting_for
from gateway.settings import WorkspaceSettings
from tests.support.clock import Clock


def pacer(rate: float, clock: Clock) -> FairPacer:
    async def sleep(seconds: float) -> None:
        await asyncio.sleep(0)  # the caller just granted runs (and reads the clock) first
        clock.advance(seconds)

    return FairPacer(rate, clock=clock, sleep=sleep)


async def _turns(pacer: FairPacer, clock: Clock, who: list[str]) -> list[tuple[str, float]]:
    """Every caller in ``who`` asks at once; (namespace, time) of each turn, in order."""
    granted: list[tuple[str, float]] = []

    async def one(namespace: str) -> None:
        await pacer.turn(namespace)
        granted.append((namespace, clock.now))

    async with asyncio.TaskGroup() as group:
        for namespace in who:
            group.create_task(one(namespace))
    return granted


async def test_turns_are_spaced_by_the_rate() -> None:
    """At 10 a second the turns come 0.1 s apart, the first at once."""
    clock = Clock(100.0)
    granted = await _turns(pacer(10, clock), clock, ["a"] * 5)
    assert [round(t - 100.0, 6) for _, t in granted] == [0.0, 0.1, 0.2, 0.3, 0.4]


async def test_waiting_namespaces_take_turns() -> None:
    """A namespace asking six times and one asking twice alternate until one has none left."""
    clock = Clock()
    granted = await _turns(pacer(100, clock), clock, ["busy"] * 6 + ["quiet"] * 2)
    assert [ns for ns, _ in granted] == ["busy", "busy", "quiet", "busy", "quiet"] + ["busy"] * 3


async def test_a_cancelled_waiter_gives_its_turn_away_and_stops_nothing() -> None:
    """The next waiter gets the turn; once nobody waits the pacer holds no task."""
    clock = Clock()
    paced = pacer(10, clock)
    await paced.turn("a")
    first = asyncio.create_task(paced.turn("a"))
    second = asyncio.create_task(paced.turn("b"))
    await asyncio.sleep(0)
    first.cancel()
    await second
    assert paced.waiting == 0
    third = asyncio.create_task(paced.turn("a"))
    await asyncio.sleep(0)
    third.cancel()
    with pytest.raises(asyncio.CancelledError):
        await third
    assert paced.waiting == 0
    assert not any(t.get_name() == "databricks-pacer" and not t.done() for t in asyncio.all_tasks())


def test_budgets_exist_only_where_set_and_for_submit_and_get() -> None:
    """runs/submit and runs/get draw on their workspace's budget; other endpoints on none."""
    budgets = RequestBudgets.of(
        {
            "prod": WorkspaceSettings(
                host="https://a.cloud.databricks.com", get_requests_per_second=50
            ),
            "dev": WorkspaceSettings(
                host="https://b.cloud.databricks.com", submit_requests_per_second=5
            ),
        }
    )
    prod, dev = "https://a.cloud.databricks.com", "https://b.cloud.databricks.com"
    found = budgets.pacer(prod, "runs/get")
    assert found is not None
    assert found.rate == 50
    assert budgets.pacer(prod, "runs/submit") is None
    assert budgets.pacer(dev, "runs/submit") is not None
    assert budgets.pacer(dev, "runs/list") is None


async def test_the_namespace_comes_from_the_context() -> None:
    """acting_for decides whose queue a call joins; without it calls share one."""
    clock = Clock()
    budgets = RequestBudgets({("h", "get"): pacer(100, clock)})
    order: list[str] = []

    async def call(namespace: str | None) -> None:
        if namespace is None:
            await budgets.turn("h", "runs/get")
        else:
            with acting_for(namespace):
                await budgets.turn("h", "runs/get")
        order.append(namespace or "-")

    async with asyncio.TaskGroup() as group:
        for namespace in ["a", "a", "a", None, "b"]:
            group.create_task(call(namespace))
    assert order == ["a", "a", "-", "b", "a"]
