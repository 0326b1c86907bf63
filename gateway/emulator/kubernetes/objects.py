"""The objects the fake API stores, and their JSON as the real apiserver writes it."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def rfc3339(epoch_seconds: float) -> str:
    """``2026-01-01T00:00:00Z``: whole seconds, UTC, as metav1.Time serialises."""
    moment = datetime.fromtimestamp(int(epoch_seconds), tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ServiceAccount:
    namespace: str
    name: str
    uid: str
    resource_version: int
    created: float
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def to_json(self, *, typed: bool = True) -> dict[str, Any]:
        """The object; list items leave out kind and apiVersion, as the real server's do."""
        metadata: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
            "resourceVersion": str(self.resource_version),
            "creationTimestamp": rfc3339(self.created),
        }
        # omitempty on the real server: an unlabelled object has no labels key at all.
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        body: dict[str, Any] = {"kind": "ServiceAccount", "apiVersion": "v1"} if typed else {}
        body["metadata"] = metadata
        return body


@dataclass(frozen=True)
class Secret:
    namespace: str
    name: str
    uid: str
    resource_version: int
    created: float
    type: str = "Opaque"
    data: Mapping[str, bytes] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def to_json(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
            "resourceVersion": str(self.resource_version),
            "creationTimestamp": rfc3339(self.created),
        }
        if self.labels:
            metadata["labels"] = dict(self.labels)
        body: dict[str, Any] = {"kind": "Secret", "apiVersion": "v1", "metadata": metadata}
        body["type"] = self.type
        if self.data:
            body["data"] = {k: base64.b64encode(v).decode("ascii") for k, v in self.data.items()}
        return body
