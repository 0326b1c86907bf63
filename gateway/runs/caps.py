"""Each workspace's effective cap on active runs: the configured one, lowered after a 429.

When Databricks answers runs/submit with 429 (REQUEST_LIMIT_EXCEEDED) even after the Jobs
client's retries, lakegate is pushing the workspace past what it takes, so the workspace's
cap is halved (from the configured cap, or from Databricks' own 1,000 when none is set) and
held for ``hold_seconds``; another 429 while it holds halves it again, down to 1. When the
hold ends the configured cap is back. Queued runs wait for the lowered cap; runs already
SUBMITTING keep retrying with their idempotency token, so none is lost or duplicated.

``cap`` is read inside ``create_run``'s transaction, on the store's thread, so the state is
guarded by a threading lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from gateway.logs import get_logger
from gateway.runs.types import Clock, utcnow
from gateway.settings import WorkspaceSettings

log = get_logger(__name__)

# Databricks' own limit on concurrent task runs per workspace.
DATABRICKS_ACTIVE_RUNS = 1000


class WorkspaceCaps:
    """The cap admission uses for each workspace now."""

    def __init__(
        self,
        workspaces: Callable[[], dict[str, WorkspaceSettings]],
        *,
        clock: Clock = utcnow,
        hold_seconds: float = 60.0,
    ) -> None:
        self._workspaces = workspaces
        self._clock = clock
        self._hold = timedelta(seconds=hold_seconds)
        self._lock = threading.Lock()
        self._lowered: dict[str, tuple[int, datetime]] = {}

    def configured(self, workspace: str) -> int | None:
        found = self._workspaces().get(workspace)
        return found.max_active_runs if found else None

    def cap(self, workspace: str) -> int | None:
        """The configured cap, or the lowered one while a 429's hold lasts."""
        configured = self.configured(workspace)
        with self._lock:
            lowered = self._lowered.get(workspace)
            if lowered is None:
                return configured
            if lowered[1] <= self._clock():
                del self._lowered[workspace]
                return configured
            return lowered[0] if configured is None else min(configured, lowered[0])

    def caps(self) -> dict[str, int | None]:
        return {name: self.cap(name) for name in self._workspaces()}

    def rate_limited(self, workspace: str) -> None:
        """Databricks answered 429 to a submission: halve the cap and hold it."""
        current = self.cap(workspace) or DATABRICKS_ACTIVE_RUNS
        lowered = max(1, current // 2)
        with self._lock:
            self._lowered[workspace] = (lowered, self._clock() + self._hold)
        log.warning("workspace_cap_lowered", workspace=workspace, cap=lowered)
