"""``lakegate quota -n NS [--watch]``: a namespace's quota as the gateway reports it.

Pure formatting of ``GET /v1/namespaces/{namespace}/quota``; ``-o json`` prints it as is.
``--watch`` asks again every ``--poll-interval`` seconds with the habit of ``submit --wait``:
on a terminal the view is redrawn in place; elsewhere (a log, a pipe) it is printed again only
when what it counts changes, so the log reads as a history. Ctrl-C is how watching ends: the
command then exits 0 with the last view left on screen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any, TextIO

from gateway.cli.client import LakegateClient
from gateway.cli.invocation import Progress


def _limit(value: Any) -> str:
    return "none" if value is None else str(value)


def format_quota(view: dict[str, Any]) -> str:
    """Limits against usage, one line each, then the queue with its estimated waits."""
    limits, usage = view.get("limits", {}), view.get("usage", {})
    state = "paused" if view.get("paused") else "draining" if view.get("draining") else "open"
    lines = [
        f"namespace {view.get('namespace')} on workspace {_limit(view.get('workspace'))}: {state}",
        f"  active     {usage.get('active')} / {limits.get('max_active_runs')}"
        f"  (over it: {limits.get('over_active')})",
        f"  queued     {usage.get('queued')} / {limits.get('max_queued_runs')}",
        f"  rate       {usage.get('submissions_last_minute')} in the last minute / "
        f"{limits.get('submissions_per_minute')} a minute, burst {limits.get('burst')}"
        + (
            f"; next in {usage['rate_retry_after_seconds']:g} s"
            if usage.get("rate_retry_after_seconds")
            else ""
        ),
        f"  workspace  {usage.get('workspace_active')} active / "
        f"{_limit(usage.get('workspace_max_active_runs'))}",
        f"  share      {limits.get('share')}",
    ]
    hours = usage.get("run_hours") or {}
    if hours.get("budget") is not None:
        frees = hours.get("retry_after_seconds")
        lines.append(
            f"  run-hours  {hours.get('used'):g} in 24 h / {hours['budget']:g}"
            + (f"; frees in {frees:g} s" if frees else "")
        )
    for entry in view.get("queue", []):
        wait = entry.get("estimated_wait_seconds")
        guess = "unknown" if wait is None else f"~{wait:g} s"
        lines.append(
            f"  #{entry['position']}  run {entry['id']}  queued {entry.get('queued_seconds')} s,"
            f" estimated wait {guess}"
        )
    return "\n".join(lines)


def _counted(view: dict[str, Any]) -> tuple[object, ...]:
    """What a non-live watch prints again for: the counts and the queue, not ages."""
    usage = view.get("usage", {})
    hours = usage.get("run_hours") or {}
    return (
        usage.get("active"), usage.get("queued"), usage.get("workspace_active"),
        usage.get("submissions_last_minute"), hours.get("used"), view.get("paused"),
        view.get("draining"), tuple(e.get("id") for e in view.get("queue", [])),
    )  # fmt: skip


class QuotaDisplay:
    """Shows the quota view while someone watches it; ``live`` redraws the block in place."""

    def __init__(self, stream: TextIO, *, live: bool, as_json: bool = False) -> None:
        self.live = live
        self._stream = stream
        self._json = as_json
        self._lines = 0
        self._shown: tuple[object, ...] | None = None

    def update(self, view: dict[str, Any]) -> None:
        # JSON: one document a line, so a pipe can read each as it comes.
        text = json.dumps(view, separators=(",", ":")) if self._json else format_quota(view)
        if self.live:
            # Back to the block's first line, then clear to the end of the screen.
            up = f"\x1b[{self._lines}F" if self._lines else ""
            self._stream.write(f"{up}\x1b[J{text}\n")
            self._lines = text.count("\n") + 1
        elif (key := _counted(view)) != self._shown:
            self._shown = key
            self._stream.write(text + "\n" + ("" if self._json else "\n"))
        self._stream.flush()


async def _watch(
    client: LakegateClient, namespace: str, display: QuotaDisplay, every: float
) -> None:
    while True:
        display.update(await client.quota(namespace))
        await asyncio.sleep(every)


async def quota_flow(client: LakegateClient, progress: Progress, args: argparse.Namespace) -> int:
    as_json, namespace = progress.target.output == "json", progress.target.namespace
    if not getattr(args, "watch", False):
        view = await client.quota(namespace)
        print(json.dumps(view, indent=2) if as_json else format_quota(view))
        return 0
    display = QuotaDisplay(sys.stdout, live=sys.stdout.isatty() and not as_json, as_json=as_json)
    # Ctrl-C: asyncio.run cancels the flow. For a watch that is the normal end, not an
    # interruption of work, so the flow returns and the command exits 0.
    with contextlib.suppress(asyncio.CancelledError):
        await _watch(client, namespace, display, args.poll_interval)
    return 0
