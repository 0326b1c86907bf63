"""``lakegate quota -n NS``: a namespace's quota as the gateway reports it, for people.

Pure formatting of ``GET /v1/namespaces/{namespace}/quota``; ``-o json`` prints it as is.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

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
    for entry in view.get("queue", []):
        wait = entry.get("estimated_wait_seconds")
        guess = "unknown" if wait is None else f"~{wait:g} s"
        lines.append(
            f"  #{entry['position']}  run {entry['id']}  queued {entry.get('queued_seconds')} s,"
            f" estimated wait {guess}"
        )
    return "\n".join(lines)


async def quota_flow(client: LakegateClient, progress: Progress, args: argparse.Namespace) -> int:
    view = await client.quota(progress.target.namespace)
    print(json.dumps(view, indent=2) if progress.target.output == "json" else format_quota(view))
    return 0
