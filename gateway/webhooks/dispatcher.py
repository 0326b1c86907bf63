"""The webhook dispatcher: claims due outbox rows and delivers them, at least once.

The outbox is the ledger of deliveries: a row is claimed with a lease, sent, and settled
(delivered, retry at, dead); a crash before the settlement leaves the lease to run out and the
row is sent again with the same webhook-id, so receivers deduplicate on it. The store hands
out only the oldest unsettled event of each run, so a run's events arrive in order.
Concurrency is bounded overall (``max_concurrency`` deliveries at once) and per endpoint
(``max_per_endpoint``). Settlements are written in batches, one transaction per loop turn.

Replicas share the outbox by claiming rows under their replica id (``server.replica_id``): a
claim lasts ``webhooks.lease_seconds`` and is renewed every third of that while the delivery
is in flight (a slow receiver does not lose it), so a dead replica's rows are taken over
within one lease. A settlement is fenced by the owner: once another replica took a row over,
this one's late result changes nothing.

One ``aiohttp.ClientSession`` (owned by the app's cleanup context) carries every delivery;
its connector resolves hosts through the guard, never follows redirects, and ignores proxy
variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import aiohttp

from gateway.errors import LakegateError
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.store.base import OutboxEntry, Settle, Settlement, Store
from gateway.webhooks.destination import destination
from gateway.webhooks.guard import Guard, UrlRefused
from gateway.webhooks.keys import SigningKeys
from gateway.webhooks.resolver import AddressRefused
from gateway.webhooks.schedule import Verdict, next_delay, retry_after_seconds, verdict
from gateway.webhooks.signing import webhook_headers, webhook_id

log = get_logger(__name__)

CLAIM_BATCH = 100
DISABLED_REFRESH_SECONDS = 5.0
GAUGES_REFRESH_SECONDS = 15.0


class Dispatcher:
    """Delivers the outbox; ``run_forever`` is its one background task."""

    def __init__(
        self,
        *,
        store: Store,
        session: aiohttp.ClientSession,
        settings: Settings,
        keys: SigningKeys,
        metrics: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._session = session
        self._settings = settings
        self._options = settings.webhooks
        self._guard = Guard.of(
            settings.webhooks.allow_networks, allow_http=settings.webhooks.allow_http
        )
        self._keys = keys
        self._metrics = metrics
        self._clock = clock
        self._inflight: set[asyncio.Task[None]] = set()
        self._per_endpoint: dict[str, asyncio.Semaphore] = {}
        self._settled: list[Settlement] = []
        self._owner = settings.server.replica_id
        # Rows this dispatcher holds: claimed, not yet settled in the store. Their leases are
        # renewed until the settlement is written.
        self._leased: set[int] = set()
        self._wake = asyncio.Event()
        self._disabled: frozenset[tuple[str, str]] = frozenset()
        self._disabled_at = float("-inf")
        self._gauges_at = float("-inf")

    def nudge(self) -> None:
        """Look for due rows now rather than at the next poll (e.g. after a redelivery)."""
        self._wake.set()

    async def run_forever(self) -> None:
        renewer = asyncio.create_task(self._renew_forever(), name="webhook-lease-renewal")
        try:
            while True:
                claimed = await self._turn()
                if not claimed:
                    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that
                    # arrives as the event is set, and the task would never stop.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._options.poll_interval_seconds):
                            await self._wake.wait()
                    self._wake.clear()
        finally:
            for task in (*self._inflight, renewer):
                task.cancel()
            await asyncio.gather(*self._inflight, renewer, return_exceptions=True)

    async def _renew_forever(self) -> None:
        """Every third of the lease, extend the claims on the rows still held."""
        lease = self._options.lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            held = frozenset(self._leased)
            if not held:
                continue
            try:
                kept = await self._store.renew_outbox(
                    held, self._clock(), owner=self._owner, lease_seconds=lease
                )
            except LakegateError as exc:
                # Tried again at the next third; the lease has two of them left.
                log.warning("webhook_lease_renewal_failed", rows=len(held), error=exc.message)
                continue
            # Taken over by another replica (ours ran out while the store was away): its
            # attempt wins, ours is fenced off when settled. Rows settled meanwhile left.
            if lost := (held & self._leased) - kept:
                self._leased -= lost
                log.warning("webhook_leases_lost", owner=self._owner, event_ids=sorted(lost))

    async def _turn(self) -> int:
        """Settle what finished, then claim and start what is due; how many were started."""
        try:
            await self._flush()
            await self._refresh_disabled()
            await self._refresh_gauges()
            free = self._options.max_concurrency - len(self._inflight)
            if free <= 0:
                return 0
            entries = await self._store.claim_outbox(
                self._clock(),
                owner=self._owner,
                limit=min(free, CLAIM_BATCH),
                lease_seconds=self._options.lease_seconds,
            )
        except LakegateError as exc:
            log.warning("webhook_store_unavailable", error=exc.message)
            return 0
        self._leased.update(entry.id for entry in entries)
        for entry in entries:
            task = asyncio.create_task(self._attempt(entry), name=f"webhook-{entry.id}")
            self._inflight.add(task)
            task.add_done_callback(self._done)
        return len(entries)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()

    async def _flush(self) -> None:
        if not self._settled:
            return
        batch, self._settled = self._settled, []
        try:
            written = await self._store.settle_outbox(batch, owner=self._owner)
        except LakegateError:
            self._settled = batch + self._settled
            raise
        self._leased.difference_update(s.entry_id for s in batch)
        if written < len(batch):
            # Rows another replica took over (its attempt stands) or settled already.
            log.info("webhook_settlements_fenced", owner=self._owner, skipped=len(batch) - written)

    async def _refresh_disabled(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._disabled_at < DISABLED_REFRESH_SECONDS:
            return
        endpoints = await self._store.disabled_endpoints()
        self._disabled = frozenset((e.namespace, e.url) for e in endpoints)
        self._disabled_at = time.monotonic()

    async def _refresh_gauges(self) -> None:
        """Queue depth and dead events per namespace, and disabled endpoints, for /metrics."""
        if time.monotonic() - self._gauges_at < GAUGES_REFRESH_SECONDS:
            return
        self._gauges_at = time.monotonic()
        counts = await self._store.outbox_counts()
        self._metrics.webhook_queue.clear()
        for (namespace, status), count in counts.items():
            self._metrics.webhook_queue.labels(namespace=namespace, status=status).set(count)
        self._metrics.webhook_disabled.clear()
        per_namespace: dict[str, int] = {}
        for namespace, _ in self._disabled:
            per_namespace[namespace] = per_namespace.get(namespace, 0) + 1
        for namespace, count in per_namespace.items():
            self._metrics.webhook_disabled.labels(namespace=namespace).set(count)

    async def _attempt(self, entry: OutboxEntry) -> None:
        policy = self._settings.tenants.webhooks(entry.namespace)
        url = destination(entry.payload, policy, self._guard)
        now = self._clock()
        if url is None:
            self._settle(entry, Settle.DELIVERED, "no_endpoint", now)
            return
        if (entry.namespace, url) in self._disabled:
            error = "endpoint disabled after 410 Gone; re-enable it, then redeliver"
            self._settle(entry, Settle.DEAD, "disabled", now, error=error, endpoint=url)
            return
        semaphore = self._per_endpoint.setdefault(
            url, asyncio.Semaphore(self._options.max_per_endpoint)
        )
        async with semaphore:
            await self._send(entry, url)

    async def _send(self, entry: OutboxEntry, url: str) -> None:
        started = time.perf_counter()
        status, retry_after, error = await self._post(entry, url)
        seconds = time.perf_counter() - started
        now = self._clock()
        meaning = verdict(status)
        if meaning is Verdict.DELIVERED:
            self._settle(entry, Settle.DELIVERED, "delivered", now, status=status, endpoint=url)
            self._metrics.webhook_lag.labels(namespace=entry.namespace).observe(
                max((now - entry.created_at).total_seconds(), 0.0)
            )
        elif meaning is Verdict.GONE:
            await self._disable(entry.namespace, url, now)
            error = "410 Gone: the endpoint asked to be disabled"
            self._settle(entry, Settle.DEAD, "gone", now, status=status, error=error, endpoint=url)
        else:
            self._failed(entry, url, now, status, retry_after, error)
        self._metrics.webhook_latency.labels(namespace=entry.namespace).observe(seconds)

    def _failed(
        self,
        entry: OutboxEntry,
        url: str,
        now: datetime,
        status: int | None,
        retry_after: float | None,
        error: str,
    ) -> None:
        attempts = entry.attempts + 1
        delay = next_delay(attempts, self._options.retry_schedule_seconds, retry_after)
        if delay is None:
            self._settle(entry, Settle.DEAD, "dead", now, status=status, error=error, endpoint=url)
            log.warning(
                "webhook_dead", namespace=entry.namespace, run_id=entry.run_id,
                event_id=entry.id, attempts=attempts, status=status,
            )  # fmt: skip
            return
        self._settle(
            entry, Settle.RETRY, "retry", now, status=status, error=error, endpoint=url,
            next_at=now + timedelta(seconds=delay),
        )  # fmt: skip

    async def _post(self, entry: OutboxEntry, url: str) -> tuple[int | None, float | None, str]:
        """Send one attempt: (status or None, Retry-After seconds, what went wrong)."""
        policy = self._settings.tenants.webhooks(entry.namespace)
        try:
            self._guard.check_url(url)
            keys = await self._keys.keys(entry.namespace, policy)
        except UrlRefused as exc:
            return None, None, f"refused by the URL guard ({exc.rule})"
        except LakegateError as exc:
            return None, None, exc.message
        wid = webhook_id(entry.id, self._store.installation_id)
        body = json.dumps({"id": wid, **entry.payload}, separators=(",", ":")).encode()
        headers = webhook_headers(keys, wid, int(time.time()), body)
        timeout = aiohttp.ClientTimeout(total=self._options.timeout_seconds)
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as resp:
                await resp.read()
                after = retry_after_seconds(
                    resp.status, resp.headers.get("Retry-After"), self._clock()
                )
                return resp.status, after, f"HTTP {resp.status}"
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefused):
                return None, None, f"refused by the URL guard: {exc.os_error}"
            return None, None, "connection failed"
        except TimeoutError:
            return None, None, f"no answer within {self._options.timeout_seconds:g} s"
        except aiohttp.ClientError as exc:
            return None, None, f"transport error: {type(exc).__name__}"

    async def _disable(self, namespace: str, url: str, now: datetime) -> None:
        try:
            await self._store.disable_endpoint(namespace, url, now, reason="410 Gone")
            await self._refresh_disabled(force=True)
        except LakegateError as exc:
            log.warning("webhook_disable_failed", namespace=namespace, error=exc.message)
        # The URL may carry a receiver's token in its query: only its namespace is logged.
        log.warning("webhook_endpoint_disabled", namespace=namespace)

    def _settle(
        self,
        entry: OutboxEntry,
        outcome: Settle,
        label: str,
        now: datetime,
        *,
        status: int | None = None,
        error: str = "",
        endpoint: str | None = None,
        next_at: datetime | None = None,
    ) -> None:
        attempts = entry.attempts + (0 if label in ("no_endpoint", "disabled") else 1)
        self._settled.append(
            Settlement(
                entry.id, outcome, at=now, attempts=attempts, next_attempt_at=next_at,
                status=status, error=error, endpoint=endpoint,
            )
        )  # fmt: skip
        self._metrics.observe_webhook(entry.namespace, label, status, None)
        self._wake.set()
