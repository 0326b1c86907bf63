"""A scripted ServiceAccount source for driving a Reflector without a server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.kube.accounts import ServiceAccountRef
from gateway.kube.source import Listing, WatchEvent
from gateway.selectors import LabelSelector

ENABLED = {"lakegate.io/databricks-enabled": "true"}
SELECTOR = LabelSelector.equals(ENABLED)


def sa(
    name: str, rv: str = "1", ns: str = "tenant-a", labels: dict[str, str] | None = None
) -> ServiceAccountRef:
    return ServiceAccountRef(
        ns,
        name,
        uid=f"uid-{name}",
        resource_version=rv,
        labels=ENABLED if labels is None else labels,
    )


@dataclass
class ScriptedSource:
    """Each list() and watch() call takes the next scripted step: a result or an exception.

    A watch step is a list of events delivered before the stream ends cleanly. With no steps
    left, a call blocks until the test cancels it, as a quiet stream would, and ``idle`` is set.
    """

    selector: LabelSelector = SELECTOR
    namespace: str | None = None
    lists: Sequence[Listing | Exception] = ()
    namespace_lists: Mapping[str, Sequence[Listing | Exception]] = field(default_factory=dict)
    watches: Sequence[Sequence[WatchEvent] | Exception] = ()
    list_calls: list[str | None] = field(default_factory=list)
    watch_versions: list[str] = field(default_factory=list)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    list_delay: float = 0.0

    def __post_init__(self) -> None:
        # Steps are consumed from the front of private copies.
        self._lists = list(self.lists)
        self._watches = list(self.watches)
        self._namespace_lists = {ns: list(steps) for ns, steps in self.namespace_lists.items()}

    async def list(self, namespace: str | None = None) -> Listing:
        self.list_calls.append(namespace)
        if self.list_delay:
            await asyncio.sleep(self.list_delay)
        steps = self._lists if namespace is None else self._namespace_lists[namespace]
        if not steps:
            self.idle.set()
            await asyncio.Event().wait()
        step = steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    async def watch(
        self,
        resource_version: str,
        *,
        timeout_seconds: int,
        on_event: Callable[[WatchEvent], None],
        on_open: Callable[[], None] = lambda: None,
    ) -> int:
        self.watch_versions.append(resource_version)
        if not self._watches:
            on_open()
            self.idle.set()
            await asyncio.Event().wait()
        step = self._watches.pop(0)
        if isinstance(step, Exception):
            raise step
        on_open()
        for event in step:
            on_event(event)
        return len(step)


class Sleeps:
    """An instant sleep that records what the loop asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)
