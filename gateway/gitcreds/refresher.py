"""The background half: Git credentials stay fresh while their principal's runs are active.

A run's tasks clone its repository when they start, which may be long after the run was
submitted (a queue at Databricks, a task that waits for others). So every ``interval`` the
refresher asks the ledger which namespaces have runs at Databricks (SUBMITTING to
TERMINATING), and for each principal the keeper wrote for lately one of whose namespaces is
among them, and still enabled, makes sure its credential is fresh (``GitCredentialKeeper.ensure``:
a no-op while the token is outside its refresh-ahead window). A failure is counted
(``lakegate_git_credential_refresh_failures_total``) and logged (``git_credential_refresh_failed``)
by the keeper, naming the namespace; one principal's failure never stops the others'.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from gateway.errors import LakegateError
from gateway.gitcreds.keeper import GitCredentialKeeper
from gateway.logs import get_logger
from gateway.model import RunState
from gateway.store.base import Store

log = get_logger(__name__)

# Shorter than any refresh-ahead window an hour-long token gets (20 minutes), so a
# credential is always replaced before its token expires.
DEFAULT_INTERVAL_SECONDS = 60.0
AT_DATABRICKS = frozenset(
    {RunState.SUBMITTING, RunState.PENDING, RunState.RUNNING, RunState.TERMINATING}
)


class GitCredentialRefresher:
    def __init__(
        self,
        keeper: GitCredentialKeeper,
        store: Store,
        *,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._keeper = keeper
        self._store = store
        self._interval = interval
        self._sleep = sleep

    async def run_forever(self) -> None:
        while True:
            await self.tick()
            await self._sleep(self._interval)

    async def tick(self) -> int:
        """Refresh what needs it; how many principals were looked at."""
        known = self._keeper.known()
        if not known:
            return 0
        try:
            counts = await self._store.counts_by_namespace_state(AT_DATABRICKS)
        except LakegateError as exc:
            log.warning("git_credential_refresher_skipped", error=exc.message)
            return 0
        active = {namespace for (namespace, _), count in counts.items() if count > 0}
        looked = 0
        for identity, namespaces in known:
            busy = sorted(n for n in namespaces & active if self._keeper.enabled(n))
            if not busy:
                continue
            namespace = busy[0]
            looked += 1
            try:
                await self._keeper.ensure(namespace, identity, trigger="background")
            except LakegateError:
                # Counted and logged by the keeper, with the namespace; the next tick retries.
                continue
        return looked
