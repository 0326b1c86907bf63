"""The ServiceAccount informer: which ServiceAccounts are labelled for lakegate, kept current.

One ``Reflector`` (a list-and-watch loop) runs per label selector and scope: a selector cannot
say "this label or that one", so ``lakegate.io/databricks-enabled=true`` and Flyte's
``flyte.org/databricks-enabled=true`` are two selectors and two watches, merged in one
``AccountCache``. With a namespace list there is one watch per selector and namespace, which
needs only namespaced RBAC; without one, one cluster-wide watch per selector.

Reads are async because a reflector that may not watch (RBAC, or not listed yet) answers from
a direct read of the namespace, cached for a TTL; while watching, reads are served from memory
without waiting. The owner calls ``start()`` once and ``aclose()`` at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.kube.accounts import ServiceAccountRef
from gateway.kube.cache import AccountCache, Listener
from gateway.kube.reflector import InformerOptions, Mode, Reflector, ReflectorStatus
from gateway.kube.source import ServiceAccountSource
from gateway.logs import get_logger
from gateway.selectors import LabelSelector
from gateway.tasks import stop

log = get_logger(__name__)

__all__ = ["InformerOptions", "InformerStatus", "ServiceAccountInformer"]


@dataclass(frozen=True, slots=True)
class InformerStatus:
    """For health checks: ``fallback`` if any loop is reading directly instead of watching."""

    mode: Mode
    ready: bool
    reflectors: tuple[ReflectorStatus, ...]


class ServiceAccountInformer:
    """ServiceAccounts matched by any of ``selectors``, in ``namespaces`` (None: all)."""

    def __init__(
        self,
        api: Any,
        *,
        selectors: Sequence[str | LabelSelector],
        namespaces: Sequence[str] | None = None,
        options: InformerOptions | None = None,
        request_timeout: tuple[float, float] = (5.0, 30.0),
        listeners: Iterable[Listener] = (),
    ) -> None:
        parsed = [s if isinstance(s, LabelSelector) else LabelSelector.parse(s) for s in selectors]
        if not parsed:
            raise ValueError("the informer needs at least one label selector")
        if namespaces is not None and not namespaces:
            raise ValueError("give namespaces=None for all namespaces, not an empty list")
        self.options = options or InformerOptions()
        self.cache = AccountCache(listeners)
        self.ready = asyncio.Event()
        scopes: list[str | None] = list(dict.fromkeys(namespaces)) if namespaces else [None]
        self._reflectors = [
            Reflector(
                ServiceAccountSource(
                    api, selector=selector, namespace=scope, request_timeout=request_timeout
                ),
                self.cache,
                self.options,
                name=f"{selector.text()}@{scope or '*'}",
                on_ready=self._reflector_ready,
            )
            for selector in dict.fromkeys(parsed)
            for scope in scopes
        ]
        self._tasks: list[asyncio.Task[None]] = []

    def add_listener(self, listener: Listener) -> None:
        """Hear of every change of the merged view; listeners are sync and must not block."""
        self.cache.add_listener(listener)

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the loops on the running event loop; ``ready`` is set once all can serve."""
        if self._tasks:
            raise RuntimeError("the informer is already started")
        self._tasks = [
            asyncio.create_task(r.run(), name=f"kube-informer {r.name}") for r in self._reflectors
        ]
        log.info(
            "kube_informer_started",
            loops=[r.name for r in self._reflectors],
            watch_timeout_seconds=self.options.watch_timeout_seconds,
        )

    async def aclose(self) -> None:
        """Stop the loops and wait for them; the cache stays readable but no longer changes."""
        tasks, self._tasks = self._tasks, []
        await stop(*tasks)
        for reflector in self._reflectors:
            await reflector.aclose()

    def _reflector_ready(self) -> None:
        if all(r.ready.is_set() for r in self._reflectors):
            self.ready.set()

    # --- reads --------------------------------------------------------------------------

    async def get(self, namespace: str, name: str) -> ServiceAccountRef | None:
        """The labelled ServiceAccount ``namespace/name``, or None if none is labelled so."""
        await self._ensure_fresh(namespace)
        return self.cache.get(namespace, name)

    def namespaces(self) -> tuple[str, ...]:
        """The namespaces holding a labelled ServiceAccount, as the informer holds them now."""
        return self.cache.namespaces()

    async def in_namespace(self, namespace: str) -> tuple[ServiceAccountRef, ...]:
        """Every labelled ServiceAccount in ``namespace``, by name."""
        await self._ensure_fresh(namespace)
        return self.cache.in_namespace(namespace)

    async def _ensure_fresh(self, namespace: str) -> None:
        # Sequential: there are one or two selectors, and a refusal should stop at the first.
        for reflector in self._reflectors:
            await reflector.ensure_fresh(namespace)

    @property
    def status(self) -> InformerStatus:
        loops = tuple(r.status() for r in self._reflectors)
        modes = {s.mode for s in loops}
        mode: Mode = (
            "fallback" if "fallback" in modes else "starting" if "starting" in modes else "watching"
        )
        return InformerStatus(mode=mode, ready=self.ready.is_set(), reflectors=loops)
