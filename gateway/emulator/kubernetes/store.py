"""The cluster's objects, one resourceVersion counter, and a bounded history of SA events.

The counter is shared by every change, as etcd's revision is, so a ServiceAccount watch sees
gaps in resourceVersions. ServiceAccount changes are kept, newest last, for watches that
resume from a resourceVersion; once an event falls out of the history (or the admin
compacts it), resuming from before it is "too old" and gets 410 Expired.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from gateway.emulator.clock import Clock
from gateway.emulator.kubernetes.config import KubeEmulatorConfig
from gateway.emulator.kubernetes.objects import Secret, ServiceAccount

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True)
class ChangeEvent:
    """One change to a ServiceAccount; ``previous`` lets a filtered watch see it leave."""

    resource_version: int
    type: EventType
    obj: ServiceAccount
    previous: ServiceAccount | None = None


Listener = Callable[[ChangeEvent], None]


def _merge(current: Mapping[str, str], patch: Mapping[str, str | None]) -> dict[str, str]:
    """JSON merge patch of one map: a None value removes the key."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class Store:
    def __init__(self, clock: Clock, history_size: int) -> None:
        self._clock = clock
        self.resource_version = 0
        self.namespaces: set[str] = set()
        # Only namespaces that were given labels appear here; the others have none.
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self.service_accounts: dict[tuple[str, str], ServiceAccount] = {}
        self.secrets: dict[tuple[str, str], Secret] = {}
        self._history: deque[ChangeEvent] = deque()
        self._history_size = history_size
        # Resuming a watch from a resourceVersion below this one may miss events.
        self.compacted_rv = 0
        self._listeners: list[Listener] = []

    @classmethod
    def from_config(cls, config: KubeEmulatorConfig, clock: Clock) -> Store:
        store = cls(clock, config.watch.history_size)
        for ns, spec in config.namespaces.items():
            store.namespaces.add(ns)
            if spec.labels:
                store.namespace_labels[ns] = dict(spec.labels)
            for name, sa in spec.service_accounts.items():
                store.put_service_account(
                    ns, name, labels=sa.labels, annotations=sa.annotations, uid=sa.uid
                )
            for name, secret in spec.secrets.items():
                store.put_secret(ns, name, secret.decoded(), type=secret.type, labels=secret.labels)
        return store

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _next_rv(self) -> int:
        self.resource_version += 1
        return self.resource_version

    def tick(self) -> int:
        """Advance the resourceVersion as a change to some other object would."""
        return self._next_rv()

    def _record(self, event: ChangeEvent) -> None:
        if len(self._history) >= self._history_size:
            self.compacted_rv = self._history.popleft().resource_version
        self._history.append(event)
        for listener in list(self._listeners):
            listener(event)

    def compact(self) -> None:
        """Forget every past event: only a watch from the current resourceVersion resumes."""
        self._history.clear()
        self.compacted_rv = self.resource_version

    def events_after(self, rv: int) -> list[ChangeEvent] | None:
        """The events after ``rv``, oldest first; None when some may have been forgotten."""
        if rv < self.compacted_rv:
            return None
        return [e for e in self._history if e.resource_version > rv]

    # --- ServiceAccounts ---------------------------------------------------------------------

    def service_account(self, namespace: str, name: str) -> ServiceAccount | None:
        return self.service_accounts.get((namespace, name))

    def list_service_accounts(self, namespace: str | None = None) -> list[ServiceAccount]:
        return [
            sa
            for key, sa in sorted(self.service_accounts.items())
            if namespace is None or key[0] == namespace
        ]

    def put_service_account(
        self,
        namespace: str,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        uid: str | None = None,
    ) -> ServiceAccount:
        """Create the ServiceAccount, or replace it (keeping its UID unless one is given)."""
        self.namespaces.add(namespace)
        previous = self.service_accounts.get((namespace, name))
        rv = self._next_rv()
        sa = ServiceAccount(
            namespace=namespace,
            name=name,
            uid=uid or (previous.uid if previous else str(uuid.uuid4())),
            resource_version=rv,
            created=previous.created if previous else self._clock.now(),
            labels=dict(labels or {}),
            annotations=dict(annotations or {}),
        )
        if previous is not None and previous.uid != sa.uid:
            # A new UID is a new object: watchers see the old one go and the new one come.
            self._record(ChangeEvent(rv, "DELETED", replace(previous, resource_version=rv)))
            rv = self._next_rv()
            sa = replace(sa, resource_version=rv, created=self._clock.now())
            previous = None
        self.service_accounts[sa.key] = sa
        self._record(ChangeEvent(rv, "ADDED" if previous is None else "MODIFIED", sa, previous))
        return sa

    def patch_service_account(
        self,
        namespace: str,
        name: str,
        *,
        labels: Mapping[str, str | None] | None = None,
        annotations: Mapping[str, str | None] | None = None,
    ) -> ServiceAccount | None:
        """Merge-patch labels and annotations; None when there is no such ServiceAccount."""
        previous = self.service_accounts.get((namespace, name))
        if previous is None:
            return None
        new_labels = _merge(previous.labels, labels or {})
        new_annotations = _merge(previous.annotations, annotations or {})
        if new_labels == previous.labels and new_annotations == previous.annotations:
            return previous  # a no-op patch changes no resourceVersion, as on the real server
        sa = replace(
            previous,
            resource_version=self._next_rv(),
            labels=new_labels,
            annotations=new_annotations,
        )
        self.service_accounts[sa.key] = sa
        self._record(ChangeEvent(sa.resource_version, "MODIFIED", sa, previous))
        return sa

    def delete_service_account(self, namespace: str, name: str) -> ServiceAccount | None:
        previous = self.service_accounts.pop((namespace, name), None)
        if previous is None:
            return None
        # The DELETED event carries the last state, at the deletion's resourceVersion.
        last = replace(previous, resource_version=self._next_rv())
        self._record(ChangeEvent(last.resource_version, "DELETED", last, previous))
        return last

    # --- Secrets and namespaces --------------------------------------------------------------

    def secret(self, namespace: str, name: str) -> Secret | None:
        return self.secrets.get((namespace, name))

    def put_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, bytes],
        *,
        type: str = "Opaque",
        labels: Mapping[str, str] | None = None,
    ) -> Secret:
        """Create or replace the Secret (keeping its UID)."""
        self.namespaces.add(namespace)
        previous = self.secrets.get((namespace, name))
        secret = Secret(
            namespace=namespace,
            name=name,
            uid=previous.uid if previous else str(uuid.uuid4()),
            resource_version=self._next_rv(),
            created=previous.created if previous else self._clock.now(),
            type=type,
            data=dict(data),
            labels=dict(labels or {}),
        )
        self.secrets[secret.key] = secret
        return secret

    def delete_secret(self, namespace: str, name: str) -> Secret | None:
        previous = self.secrets.pop((namespace, name), None)
        if previous is not None:
            self._next_rv()
        return previous

    def delete_namespace(self, namespace: str) -> bool:
        """Delete the namespace and everything in it; False when it did not exist."""
        if namespace not in self.namespaces:
            return False
        for sa in self.list_service_accounts(namespace):
            self.delete_service_account(namespace, sa.name)
        for key in [k for k in self.secrets if k[0] == namespace]:
            self.delete_secret(*key)
        self.namespaces.discard(namespace)
        self.namespace_labels.pop(namespace, None)
        return True

    def label_namespace(self, namespace: str, labels: Mapping[str, str | None]) -> dict[str, str]:
        """Create the namespace if need be and merge-patch its labels (None removes one)."""
        self.namespaces.add(namespace)
        merged = _merge(self.namespace_labels.get(namespace, {}), labels)
        self.namespace_labels[namespace] = merged
        self._next_rv()
        return merged
