"""Reading a tenant's Secret: its data, decoded, and never printed.

A missing secret and a forbidden one are different answers for the resolver ("namespace has no
secret X" versus "lakegate may not read it"), so they stay distinct errors: ``KubeNotFound``
and ``KubeForbidden``, whose message quotes RBAC's refusal.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from kubernetes_asyncio import client

from gateway.errors import KubernetesError
from gateway.kube.status import Target, translated
from gateway.logs import get_logger

log = get_logger(__name__)


class SecretData(dict[str, bytes]):
    """A secret's decoded data; its repr shows the keys only, so a stray log leaks nothing.

    ``labels`` are the Secret's labels: a request may name only a Secret its namespace
    labelled ``lakegate.io/databricks-enabled: "true"``."""

    labels: Mapping[str, str] = MappingProxyType({})

    def __repr__(self) -> str:
        return f"SecretData(keys={sorted(self)!r})"

    __str__ = __repr__

    def text(self, key: str) -> str | None:
        """The value of ``key`` as UTF-8 text, stripped, or None when absent or empty."""
        raw = self.get(key)
        if raw is None:
            return None
        value = raw.decode("utf-8", errors="strict").strip()
        return value or None


def decode_data(data: dict[str, str] | None, target: Target) -> SecretData:
    """Decode a Secret's ``data`` (standard base64, left undecoded by the client)."""
    out = SecretData()
    for key, value in (data or {}).items():
        try:
            out[key] = base64.b64decode(value or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            # Name the key, never the value.
            raise KubernetesError(
                f"Kubernetes sent {target} with undecodable data in key {key!r}"
            ) from exc
    return out


class SecretReader:
    """Reads Secrets through the process's ``ApiClient`` (owned elsewhere)."""

    def __init__(self, api: Any, *, request_timeout: tuple[float, float]) -> None:
        self._core = client.CoreV1Api(api)
        self._timeout = request_timeout

    async def read_secret(self, namespace: str, name: str) -> SecretData:
        """The secret's data, decoded; ``KubeNotFound`` if absent, ``KubeForbidden`` if denied."""
        target = Target("secret", namespace, name)
        with translated("read", target):
            secret = await self._core.read_namespaced_secret(
                name, namespace, _request_timeout=self._timeout
            )
        data = decode_data(secret.data, target)
        data.labels = dict(getattr(secret.metadata, "labels", None) or {})
        log.debug("kube_secret_read", namespace=namespace, secret_name=name, keys=sorted(data))
        return data
