"""Which namespaces a caller may act for: its own, those its credential binds, and grants.

A ServiceAccount may act for its own namespace. Operators grant more in ``callers.grants``,
matching subjects with globs (``system:serviceaccount:airflow:*``, ``apikey:ci``,
``jwt:https://token.actions.githubusercontent.com#repo:org/repo-a:*``) and naming namespaces
or a label selector over them. Selector grants read the namespace's labels through
``NamespaceLabels`` (the composition root passes its KubeClient), cached briefly; a namespace
that does not exist matches no selector, so it is refused exactly like a forbidden one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Protocol

from gateway.callers.types import Caller, Identity
from gateway.selectors import LabelSelector
from gateway.settings import NAMESPACE_RE, GrantSettings, parse_selector
from gateway.singleflight import TtlCache


class NamespaceLabels(Protocol):
    """Reads a namespace's labels; None when the namespace does not exist."""

    async def namespace_labels(self, name: str) -> Mapping[str, str] | None: ...


@dataclass(frozen=True, slots=True)
class Grant:
    pattern: str
    namespaces: frozenset[str]
    selector: LabelSelector | None

    @classmethod
    def from_settings(cls, grant: GrantSettings) -> Grant:
        selector = parse_selector(grant.namespace_selector) if grant.namespace_selector else None
        return cls(grant.subject, frozenset(grant.namespaces), selector)

    def covers(self, subject: str) -> bool:
        return fnmatchcase(subject, self.pattern)


def caller_for(identity: Identity, grants: Sequence[Grant]) -> Caller:
    """The identity with every grant whose pattern matches its subject applied. Pure."""
    if identity.method == "none":
        return Caller(identity.subject, "none", all_namespaces=True)
    namespaces = set(identity.namespaces)
    selectors = list(identity.selectors)
    for grant in grants:
        if grant.covers(identity.subject):
            namespaces |= grant.namespaces
            if grant.selector is not None:
                selectors.append(grant.selector)
    return Caller(
        subject=identity.subject,
        method=identity.method,
        home_namespace=identity.home_namespace,
        namespaces=frozenset(namespaces),
        selectors=tuple(selectors),
        default_namespace=identity.default_namespace,
    )


@dataclass(frozen=True, slots=True)
class _Labels:
    # Wrapped so that "no such namespace" (None) can be cached too.
    labels: Mapping[str, str] | None


class Authorizer:
    """Decides whether a caller may act for a namespace, reading labels only when needed."""

    def __init__(
        self,
        labels: NamespaceLabels | None,
        *,
        cache_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._labels = labels
        self._cache_seconds = cache_seconds
        self._cache: TtlCache[str, _Labels] = TtlCache(max_entries, clock=clock)

    async def allows(self, caller: Caller, namespace: str) -> bool:
        if caller.may_act_for(namespace):
            return True
        reader = self._labels
        if not caller.selectors or reader is None or not NAMESPACE_RE.match(namespace):
            return False
        found = await self._cache.get(namespace, lambda: self._read(reader, namespace))
        labels = found.labels
        return labels is not None and any(s.matches(labels) for s in caller.selectors)

    async def _read(self, reader: NamespaceLabels, namespace: str) -> tuple[_Labels, float]:
        return _Labels(await reader.namespace_labels(namespace)), self._cache_seconds

    async def aclose(self) -> None:
        await self._cache.aclose()
