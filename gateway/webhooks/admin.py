"""What the API and the CLI may do with a namespace's webhooks: dead events, redelivery, and
endpoints disabled by a 410. Scoped by namespace like every request-led read."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

from gateway.errors import NotFound
from gateway.store.base import DisabledEndpoint, OutboxEntry, Store


class WebhookAdmin:
    """Dead events and disabled endpoints of the namespaces a caller may act for."""

    def __init__(
        self, store: Store, *, clock: Callable[[], datetime], nudge: Callable[[], None]
    ) -> None:
        self._store = store
        self._clock = clock
        self._nudge = nudge

    @property
    def installation_id(self) -> str:
        """What every webhook-id of this ledger is made from (see ``signing.webhook_id``)."""
        return self._store.installation_id

    async def dead(
        self, namespace: str, *, limit: int, before_id: int | None = None
    ) -> list[OutboxEntry]:
        return await self._store.list_dead_outbox(namespace, limit=limit, before_id=before_id)

    async def redeliver(self, namespace: str, entry_ids: Collection[int] | None) -> list[int]:
        """Send dead events again (those named, or all), each with its same webhook-id."""
        ids = await self._store.redeliver_outbox(namespace, self._clock(), entry_ids=entry_ids)
        if entry_ids is not None and not ids:
            raise NotFound(
                f"no dead webhook event {', '.join(map(str, sorted(entry_ids)))} in namespace "
                f"'{namespace}'; list them with GET /v1/namespaces/{namespace}/webhooks/dead"
            )
        if ids:
            self._nudge()
        return ids

    async def disabled(self, namespace: str) -> list[DisabledEndpoint]:
        return await self._store.disabled_endpoints(namespace)

    async def enable(self, namespace: str, url: str) -> None:
        """Deliver to ``url`` again; NotFound when it is not disabled for the namespace."""
        if not await self._store.enable_endpoint(namespace, url):
            raise NotFound(
                f"webhook endpoint '{url}' is not disabled in namespace '{namespace}'; "
                f"see GET /v1/namespaces/{namespace}/webhooks/endpoints"
            )
