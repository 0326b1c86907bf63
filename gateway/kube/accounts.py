"""ServiceAccounts as lakegate keeps them: small frozen values built from the API's JSON.

The informer reads raw JSON (lists and watch events alike) rather than the client's models,
so one function turns an object into a value, and a malformed object is refused in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

AccountKey = tuple[str, str]
"""(namespace, name)"""

_EMPTY: Mapping[str, str] = MappingProxyType({})


class MalformedObject(ValueError):
    """An object in a list or watch event lacks what every ServiceAccount has."""


@dataclass(frozen=True, slots=True)
class ServiceAccountRef:
    """What the resolver needs of a ServiceAccount: who it is and how it is labelled."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    @property
    def key(self) -> AccountKey:
        return (self.namespace, self.name)

    @classmethod
    def from_raw(cls, obj: Mapping[str, Any]) -> ServiceAccountRef:
        """Build from a ServiceAccount as JSON (a list item or a watch event's object)."""
        meta = obj.get("metadata")
        if not isinstance(meta, Mapping):
            raise MalformedObject("ServiceAccount without metadata")
        namespace, name = meta.get("namespace"), meta.get("name")
        if not isinstance(namespace, str) or not namespace:
            raise MalformedObject("ServiceAccount without metadata.namespace")
        if not isinstance(name, str) or not name:
            raise MalformedObject(f"ServiceAccount in {namespace} without metadata.name")
        return cls(
            namespace=namespace,
            name=name,
            uid=str(meta.get("uid") or ""),
            resource_version=str(meta.get("resourceVersion") or ""),
            labels=_string_map(meta.get("labels")),
            annotations=_string_map(meta.get("annotations")),
        )


def _string_map(value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not value:
        return _EMPTY
    # Copied and read-only, so a value handed to a listener cannot be changed under the cache.
    return MappingProxyType({str(k): str(v) for k, v in value.items()})


def newer(a: ServiceAccountRef, b: ServiceAccountRef) -> ServiceAccountRef:
    """The fresher of two views of one object.

    resourceVersions are opaque strings and only comparable as numbers by convention (etcd
    revisions), so a non-numeric pair keeps ``a``: the caller passes its preferred view first.
    """
    if a.resource_version.isdigit() and b.resource_version.isdigit():
        return b if int(b.resource_version) > int(a.resource_version) else a
    return a
