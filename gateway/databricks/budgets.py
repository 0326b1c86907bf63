"""Per-workspace request budgets for runs/submit and runs/get, shared fairly by namespaces.

Databricks limits how many runs/submit and runs/get requests a workspace takes a second (429
REQUEST_LIMIT_EXCEEDED beyond). Each workspace in gateway.yaml may set
``submit_requests_per_second`` and ``get_requests_per_second``; every HTTP attempt of that
endpoint (retries included: Databricks counts them too) first takes a turn from the
workspace's ``FairPacer`` for it.

A pacer grants turns at most ``rate`` a second, spaced ``1 / rate`` apart, so no window of
``w`` seconds holds more than ``rate * w + 1`` of them. While several namespaces wait, turns go
round-robin between them, oldest first within each: a namespace polling hard waits behind
its own requests, not in front of everyone else's, and another namespace's request waits at
most one turn per namespace waiting. Which namespace a call is for travels in a context
variable (``acting_for``), set where runs are submitted and polled, so the Jobs client's
signature stays what Databricks' API is; a call with none set shares one anonymous queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar

from gateway.settings import WorkspaceSettings

_NAMESPACE: ContextVar[str] = ContextVar("lakegate_databricks_namespace", default="")

# Which budget an endpoint draws on; endpoints absent here have none (max_concurrent_requests
# still bounds them).
BUDGETED = {"runs/submit": "submit", "runs/get": "get"}


@contextlib.contextmanager
def acting_for(namespace: str) -> Iterator[None]:
    """Calls to Databricks inside the block are the namespace's, for the fair share."""
    token = _NAMESPACE.set(namespace)
    try:
        yield
    finally:
        _NAMESPACE.reset(token)


class FairPacer:
    """Turns at most ``rate`` a second, round-robin between the namespaces waiting."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("a request budget needs a positive rate")
        self.rate = rate
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")  # the earliest moment of the next turn
        # Waiters by namespace; the dict's order is the round (served first, sent last).
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}
        self._pump: asyncio.Task[None] | None = None
        # The waiter whose turn the pump is timing, out of the queues already.
        self._current: asyncio.Future[None] | None = None

    @property
    def waiting(self) -> int:
        queued = sum(1 for queue in self._queues.values() for f in queue if not f.done())
        return queued + (self._current is not None and not self._current.done())

    def _pumping(self) -> bool:
        return self._pump is not None and not self._pump.done()

    async def turn(self, namespace: str = "") -> None:
        """Return when the caller may send one request."""
        now = self._clock()
        if not self._pumping() and now >= self._next:
            self._next = now + self._interval
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(namespace, deque()).append(waiter)
        if not self._pumping():
            self._pump = asyncio.create_task(self._serve(), name="databricks-pacer")
        try:
            await waiter
        except asyncio.CancelledError:
            waiter.cancel()
            if self.waiting == 0 and self._pump is not None:
                # Nobody left to serve: the pump must not outlive its callers.
                self._queues.clear()
                self._pump.cancel()
            raise

    async def _serve(self) -> None:
        try:
            while (waiter := self._next_waiter()) is not None:
                self._current = waiter
                while (wait := self._next - self._clock()) > 0:
                    await self._sleep(wait)
                if waiter.done():  # cancelled before its turn: the turn goes to the next one
                    continue
                self._next = max(self._clock(), self._next) + self._interval
                waiter.set_result(None)
        finally:
            self._current = None

    def _next_waiter(self) -> asyncio.Future[None] | None:
        """The head of the first namespace of the round, which then goes to the round's end."""
        while self._queues:
            namespace = next(iter(self._queues))
            queue = self._queues.pop(namespace)
            while queue and queue[0].done():
                queue.popleft()
            if not queue:
                continue
            waiter = queue.popleft()
            if queue:
                self._queues[namespace] = queue
            return waiter
        return None


class RequestBudgets:
    """Every workspace's pacers, by host and budget (``submit`` or ``get``)."""

    def __init__(self, pacers: Mapping[tuple[str, str], FairPacer]) -> None:
        self._pacers = dict(pacers)

    @classmethod
    def of(cls, workspaces: Mapping[str, WorkspaceSettings]) -> RequestBudgets:
        pacers: dict[tuple[str, str], FairPacer] = {}
        for workspace in workspaces.values():
            for budget, rate in (
                ("submit", workspace.submit_requests_per_second),
                ("get", workspace.get_requests_per_second),
            ):
                if rate is not None:
                    pacers[(workspace.host, budget)] = FairPacer(rate)
        return cls(pacers)

    def pacer(self, host: str, endpoint: str) -> FairPacer | None:
        budget = BUDGETED.get(endpoint)
        return None if budget is None else self._pacers.get((host, budget))

    async def turn(self, host: str, endpoint: str) -> None:
        """Wait for the endpoint's budget on ``host``, if it has one, for the current namespace."""
        pacer = self.pacer(host, endpoint)
        if pacer is not None:
            await pacer.turn(_NAMESPACE.get())
