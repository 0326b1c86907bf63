"""Merging runs/get's 2.2 pages (pure), and 2.2's runs/list items cut at 100."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from gateway.api.compat.wire import list_item
from gateway.databricks.pages import MAX_PAGES, fits_one_page, merge_page, whole_run
from gateway.errors import DatabricksError


def tasks(*keys: str) -> list[dict[str, Any]]:
    return [{"task_key": key} for key in keys]


def test_a_page_appends_every_array_and_takes_the_next_token() -> None:
    """tasks, job_clusters, job_parameters and repair_history continue; the token is the
    newest page's, and gone with the last page."""
    first = {
        "run_id": 1,
        "tasks": tasks("a"),
        "job_clusters": [{"job_cluster_key": "c1"}],
        "next_page_token": "p2",
    }
    second = {
        "run_id": 1,
        "tasks": tasks("b"),
        "repair_history": [{"id": 9}],
        "next_page_token": "p3",
    }
    merged = merge_page(first, second)
    assert merged["tasks"] == tasks("a", "b")
    assert merged["job_clusters"] == [{"job_cluster_key": "c1"}]
    assert merged["repair_history"] == [{"id": 9}]
    assert merged["next_page_token"] == "p3"
    last = merge_page(merged, {"run_id": 1, "job_parameters": [{"name": "x"}]})
    assert "next_page_token" not in last
    assert last["job_parameters"] == [{"name": "x"}]


def test_a_for_each_task_run_pages_its_iterations_not_its_task() -> None:
    """A for-each task run repeats its one task on every page; its iterations continue."""
    first = {"tasks": tasks("loop"), "iterations": [{"run_id": 1}], "next_page_token": "p2"}
    merged = merge_page(first, {"tasks": tasks("loop"), "iterations": [{"run_id": 2}]})
    assert merged["tasks"] == tasks("loop")
    assert merged["iterations"] == [{"run_id": 1}, {"run_id": 2}]


async def test_whole_run_follows_every_token_and_drops_the_client_s_own() -> None:
    """The first page is asked without the client's page_token; each next one with the
    token Databricks gave."""
    asked: list[dict[str, str]] = []
    book = {
        None: {"tasks": tasks("a"), "next_page_token": "p2"},
        "p2": {"tasks": tasks("b"), "next_page_token": "p3"},
        "p3": {"tasks": tasks("c")},
    }

    async def fetch(params: Mapping[str, str]) -> dict[str, Any]:
        asked.append(dict(params))
        return dict(book[params.get("page_token")])

    whole = await whole_run(fetch, {"include_history": "true", "page_token": "stale"})
    assert whole == {"tasks": tasks("a", "b", "c")}
    assert asked == [
        {"include_history": "true"},
        {"include_history": "true", "page_token": "p2"},
        {"include_history": "true", "page_token": "p3"},
    ]


@pytest.mark.parametrize("repeat", [True, False])
async def test_a_server_that_never_stops_paging_is_an_error(repeat: bool) -> None:
    """A token handed out twice, or more pages than any run has, ends in DatabricksError."""
    count = 0

    async def fetch(params: Mapping[str, str]) -> dict[str, Any]:
        nonlocal count
        count += 1
        return {"tasks": tasks(str(count)), "next_page_token": "same" if repeat else str(count)}

    with pytest.raises(DatabricksError, match="kept handing out page tokens"):
        await whole_run(fetch, {})
    assert count <= MAX_PAGES + 1


@pytest.mark.parametrize(
    ("payload", "fits"),
    [
        ({"tasks": tasks(*map(str, range(100)))}, True),
        ({"tasks": tasks(*map(str, range(101)))}, False),
        ({"tasks": tasks("a"), "job_clusters": [{}] * 101}, False),
        ({"tasks": tasks("a"), "next_page_token": "p2"}, False),
    ],
)
def test_fits_one_page(payload: dict[str, Any], fits: bool) -> None:
    """Only a run of at most 100 of each array and no token answers alike at every version."""
    assert fits_one_page(payload) is fits


def test_a_2_2_list_item_shows_the_first_100_and_has_more() -> None:
    """A whole run listed under 2.2 keeps 100 tasks and says has_more; under 2.1 it is whole;
    without expand_tasks neither arrays nor has_more."""
    shown = {"run_id": 7, "tasks": tasks(*map(str, range(150))), "job_clusters": [{}] * 3}
    cut = list_item(shown, expand_tasks=True, cut=100)
    assert (len(cut["tasks"]), cut["has_more"], len(cut["job_clusters"])) == (100, True, 3)
    assert len(list_item(shown, expand_tasks=True)["tasks"]) == 150
    plain = list_item(shown, expand_tasks=False, cut=100)
    assert "tasks" not in plain
    assert "job_clusters" not in plain
    assert "has_more" not in plain


def test_a_2_2_first_page_with_a_token_lists_has_more() -> None:
    """Databricks' first page (100 tasks and a token) is listed without the token, with
    has_more."""
    page = {"run_id": 7, "tasks": tasks(*map(str, range(100))), "next_page_token": "p2"}
    item = list_item(page, expand_tasks=True, cut=100)
    assert "next_page_token" not in item
    assert item["has_more"] is True
