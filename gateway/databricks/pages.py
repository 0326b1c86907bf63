"""A run's runs/get pages (Jobs API 2.2) followed and merged into the one answer 2.0 and 2.1 give.

Databricks' 2.2 answers at most 100 elements of each of a run's arrays per page and hands a
``next_page_token`` while any has more; 2.0 and 2.1 answer them whole. lakegate calls
Databricks at 2.2 (``workspaces.<name>.api_version``), so whoever needs a whole run follows
the pages here, as the SDK's own ``get_run`` merges them: the facade for a 2.0/2.1 client
(``gateway.api.compat``), and a run's output for every task (``gateway.api.outputs``). Each
page brings the next slice of ``tasks`` (of ``iterations`` instead, for a for-each task run,
whose single task repeats on every page), ``job_clusters``, ``job_parameters`` and
``repair_history``. One follower, so a Databricks that never stops handing out tokens (or
hands out one twice) ends in one clear ``DatabricksError`` everywhere. No I/O: the page
fetch is handed in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from gateway.errors import DatabricksError

__all__ = [
    "MAX_PAGES",
    "PAGE_SIZE",
    "fits_one_page",
    "merge_page",
    "next_page_token",
    "whole_run",
]

# Databricks allows at most 1000 tasks per run (10 pages); a server that keeps handing out
# tokens past this is not paging a run.
MAX_PAGES = 20
PAGE_SIZE = 100
# Arrays every page continues, whichever of tasks or iterations is being paged.
_ALWAYS_PAGED = ("job_clusters", "job_parameters", "repair_history")

Fetch = Callable[[Mapping[str, str]], Awaitable[dict[str, Any]]]


def next_page_token(page: Mapping[str, Any]) -> str | None:
    token = page.get("next_page_token")
    return token if isinstance(token, str) and token else None


def _pages_iterations(first: Mapping[str, Any]) -> bool:
    iterations = first.get("iterations")
    return isinstance(iterations, list) and bool(iterations)


def merge_page(whole: Mapping[str, Any], page: Mapping[str, Any]) -> dict[str, Any]:
    """``whole`` (the pages so far) with ``page``'s arrays appended and its token taken."""
    merged = dict(whole)
    keys = ("iterations" if _pages_iterations(whole) else "tasks", *_ALWAYS_PAGED)
    for key in keys:
        more = page.get(key)
        if isinstance(more, list) and more:
            so_far = whole.get(key)
            merged[key] = [*(so_far if isinstance(so_far, list) else []), *more]
    merged.pop("next_page_token", None)
    token = next_page_token(page)
    if token is not None:
        merged["next_page_token"] = token
    return merged


def fits_one_page(payload: Mapping[str, Any]) -> bool:
    """Whether ``payload`` is a whole run that 2.2 answers on one page as well, so that one
    answer serves every API version."""
    if next_page_token(payload) is not None:
        return False
    return all(
        not isinstance(payload.get(key), list) or len(payload[key]) <= PAGE_SIZE
        for key in ("tasks", "iterations", *_ALWAYS_PAGED)
    )


def first_page_params(params: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k != "page_token"}


async def whole_run(
    fetch: Fetch, params: Mapping[str, str], first: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """runs/get through every page: ``fetch(params)`` answers one page; ``first``, when
    given, is the first page already in hand."""
    query = first_page_params(params)
    whole = dict(first) if first is not None else await fetch(query)
    seen: set[str] = set()
    while (token := next_page_token(whole)) is not None:
        if token in seen or len(seen) >= MAX_PAGES:
            raise DatabricksError(
                f"Databricks runs/get kept handing out page tokens ({len(seen) + 1} pages)"
            )
        seen.add(token)
        whole = merge_page(whole, await fetch({**query, "page_token": token}))
    return whole
