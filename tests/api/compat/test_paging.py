"""runs/list paging over the ledger: every filtered run exactly once, newest first."""

from __future__ import annotations

import asyncio
from itertools import accumulate

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.api.compat.listing import scan
from gateway.api.compat.requests import ListQuery, PageToken
from gateway.model import RunRecord, RunState
from tests.api.compat.factories import EPOCH_MS, ledger_run
from tests.api.fakes import FakeRunService


def _service(states: list[RunState], gaps: list[int], *, other: int = 0) -> FakeRunService:
    """A ledger whose runs were created in id order, ``gaps`` seconds apart."""
    service = FakeRunService()
    for index, (state, at) in enumerate(zip(states, accumulate(gaps), strict=True), start=1):
        service.runs[index] = ledger_run(index, state, created_seconds=at)
    for index in range(len(states) + 1, len(states) + 1 + other):
        service.runs[index] = ledger_run(index, RunState.RUNNING, namespace="team-b")
    return service


async def _pages(
    service: FakeRunService, query: ListQuery, *, block: int, budget: int
) -> tuple[list[RunRecord], int]:
    """Follow next_page_token to the end, as the SDK does; the runs and the page count."""
    runs, pages, page = [], 0, query
    while True:
        found, token = await scan(service, "team-a", page, block_size=block, budget=budget)
        assert len(found) <= query.limit
        runs.extend(found)
        pages += 1
        if token is None:
            return runs, pages
        page = ListQuery(**{**_fields(query), "page": token, "offset": 0})


def _fields(query: ListQuery) -> dict[str, object]:
    return {name: getattr(query, name) for name in ListQuery.__dataclass_fields__}


def _expected(service: FakeRunService, query: ListQuery) -> list[int]:
    newest_first = sorted(service.runs.values(), key=lambda r: r.id, reverse=True)
    states = query.states
    kept = [
        run.id
        for run in newest_first
        if run.namespace == "team-a"
        and (states is None or run.state in states)
        and query.admits(run)
    ]
    return kept[query.offset :]


windows = st.one_of(st.none(), st.integers(-5, 130).map(lambda s: EPOCH_MS + s * 1000))


@settings(max_examples=150, deadline=None)
@given(
    states=st.lists(st.sampled_from(list(RunState)), max_size=40),
    data=st.data(),
    limit=st.integers(1, 25),
    which=st.sampled_from(["all", "active", "completed"]),
    offset=st.integers(0, 5),
    window=st.tuples(windows, windows),
    block=st.integers(1, 12),
    budget=st.integers(1, 30),
)
def test_paging_yields_each_matching_run_once_newest_first(
    states: list[RunState],
    data: st.DataObject,
    limit: int,
    which: str,
    offset: int,
    window: tuple[int | None, int | None],
    block: int,
    budget: int,
) -> None:
    """Whatever the filters, limit, block size and scan budget, following the tokens lists
    exactly the namespace's matching runs, newest first, with no run twice."""
    gaps = data.draw(st.lists(st.integers(0, 5), min_size=len(states), max_size=len(states)))
    service = _service(states, gaps, other=3)
    query = ListQuery(
        limit=limit,
        active_only=which == "active",
        completed_only=which == "completed",
        offset=offset,
        start_time_from=window[0],
        start_time_to=window[1],
    )
    runs, _ = asyncio.run(_pages(service, query, block=block, budget=budget))
    assert [run.id for run in runs] == _expected(service, query)


def test_without_filters_a_page_reads_one_row_past_the_limit() -> None:
    """The common case costs one ledger query per page, however long the ledger."""
    service = _service([RunState.RUNNING] * 60, [1] * 60)
    calls: list[int] = []
    original = service.list

    async def counting(namespace: str, **kwargs: object) -> object:
        calls.append(kwargs["limit"])  # type: ignore[arg-type]
        return await original(namespace, **kwargs)  # type: ignore[arg-type]

    service.list = counting  # type: ignore[method-assign]
    found, token = asyncio.run(scan(service, "team-a", ListQuery(limit=25)))
    assert [run.id for run in found] == list(range(60, 35, -1))
    assert token is not None
    assert calls == [26]


def test_a_window_in_the_past_stops_at_the_first_older_run() -> None:
    """start_time_from ends the scan at the first run older than it: no more ledger reads."""
    service = _service([RunState.SUCCEEDED] * 50, [10] * 50)
    query = ListQuery(limit=25, start_time_from=EPOCH_MS + 480_000)
    found, token = asyncio.run(scan(service, "team-a", query, block_size=5, budget=1000))
    assert [run.id for run in found] == [50, 49, 48]
    assert token is None


def test_the_scan_budget_hands_out_a_token_with_a_short_page() -> None:
    """Over the budget a page may be short, even empty, and says where to go on."""
    service = _service([RunState.SUCCEEDED] * 30 + [RunState.RUNNING], [1] * 31)
    query = ListQuery(limit=5, active_only=True)
    found, token = asyncio.run(scan(service, "team-a", query, block_size=4, budget=4))
    assert [run.id for run in found] == [31]
    assert token is None
    query = ListQuery(limit=5, completed_only=True, start_time_to=EPOCH_MS + 3_000)
    found, token = asyncio.run(scan(service, "team-a", query, block_size=4, budget=8))
    assert found == []
    assert isinstance(token, PageToken)
