"""The informer's in-memory view: ServiceAccounts by (namespace, name), fed by several sources.

Each source is one list-and-watch (one label selector over one scope). An account matched by
two selectors is held once per source and read as the freshest view of the two, so removing
one label does not hide an account the other label still selects. Listeners hear about a
change of the merged view only. Everything here is synchronous and runs on the event loop's
thread, so no lock is needed: a mutation and its notifications happen without an ``await``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from gateway.kube.accounts import AccountKey, ServiceAccountRef, newer
from gateway.logs import get_logger

log = get_logger(__name__)

ChangeKind = Literal["added", "modified", "deleted"]


@dataclass(frozen=True, slots=True)
class AccountChange:
    """One change of the merged view: ``before`` is None when added, ``after`` when deleted."""

    kind: ChangeKind
    before: ServiceAccountRef | None
    after: ServiceAccountRef | None

    @property
    def account(self) -> ServiceAccountRef:
        account = self.after or self.before
        assert account is not None
        return account


Listener = Callable[[AccountChange], None]


class AccountCache:
    """ServiceAccounts per source, read merged; notifies listeners of merged changes."""

    def __init__(self, listeners: Iterable[Listener] = ()) -> None:
        # namespace -> name -> source -> view; nested so in_namespace() needs no scan.
        self._entries: dict[str, dict[str, dict[str, ServiceAccountRef]]] = {}
        self._listeners = list(listeners)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # --- reads --------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> ServiceAccountRef | None:
        views = self._entries.get(namespace, {}).get(name)
        return _merge(views) if views else None

    def in_namespace(self, namespace: str) -> tuple[ServiceAccountRef, ...]:
        names = self._entries.get(namespace, {})
        return tuple(_merge(views) for _, views in sorted(names.items()))

    def namespaces(self) -> tuple[str, ...]:
        return tuple(sorted(ns for ns, names in self._entries.items() if names))

    def count(self, source: str | None = None) -> int:
        return sum(
            1
            for names in self._entries.values()
            for views in names.values()
            if source is None or source in views
        )

    # --- writes -------------------------------------------------------------------------

    def upsert(self, source: str, account: ServiceAccountRef) -> None:
        self._apply(source, {account.key: account}, removed=())

    def delete(self, source: str, key: AccountKey) -> None:
        self._apply(source, {}, removed=(key,))

    def replace(
        self, source: str, accounts: Iterable[ServiceAccountRef], *, namespace: str | None = None
    ) -> None:
        """Make ``accounts`` the source's whole content (or its content in ``namespace``)."""
        fresh = {a.key: a for a in accounts if namespace is None or a.namespace == namespace}
        stale = [k for k in self._keys_of(source, namespace) if k not in fresh]
        self._apply(source, fresh, removed=stale)

    def drop_source(self, source: str) -> None:
        self._apply(source, {}, removed=list(self._keys_of(source, None)))

    def _keys_of(self, source: str, namespace: str | None) -> Iterable[AccountKey]:
        for ns, names in self._entries.items():
            if namespace is None or ns == namespace:
                yield from ((ns, name) for name, views in names.items() if source in views)

    def _apply(
        self,
        source: str,
        upserts: dict[AccountKey, ServiceAccountRef],
        removed: Iterable[AccountKey],
    ) -> None:
        changes: list[AccountChange] = []
        for key in [*upserts, *removed]:
            before = self.get(*key)
            namespace, name = key
            names = self._entries.setdefault(namespace, {})
            views = names.setdefault(name, {})
            if key in upserts:
                views[source] = upserts[key]
            else:
                views.pop(source, None)
            if not views:
                del names[name]
                if not names:
                    del self._entries[namespace]
            after = self.get(*key)
            if before != after:
                kind: ChangeKind = (
                    "added" if before is None else "deleted" if after is None else "modified"
                )
                changes.append(AccountChange(kind, before, after))
        for change in changes:
            self._notify(change)

    def _notify(self, change: AccountChange) -> None:
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:
                # A listener's bug must not stop the informer or hide the change from others.
                log.exception(
                    "kube_informer_listener_failed",
                    namespace=change.account.namespace,
                    service_account=change.account.name,
                )


def _merge(views: dict[str, ServiceAccountRef]) -> ServiceAccountRef:
    merged: ServiceAccountRef | None = None
    for view in views.values():
        merged = view if merged is None else newer(merged, view)
    assert merged is not None
    return merged
