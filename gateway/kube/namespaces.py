"""Reading a Namespace's labels, for callers granted namespaces by label selector.

A namespace that does not exist is an answer (None), not an error: the caller's grant simply
does not match it. RBAC refusals and an unreachable API server stay errors, so an outage is
never mistaken for "no such namespace".
"""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client

from gateway.kube.status import KubeNotFound, Target, translated


class NamespaceReader:
    """Reads Namespaces through the process's ``ApiClient`` (owned elsewhere)."""

    def __init__(self, api: Any, *, request_timeout: tuple[float, float]) -> None:
        self._core = client.CoreV1Api(api)
        self._timeout = request_timeout

    async def namespace_labels(self, name: str) -> dict[str, str] | None:
        """The namespace's labels ({} when it has none), or None when it does not exist."""
        try:
            with translated("read", Target("namespace", name=name)):
                namespace = await self._core.read_namespace(name, _request_timeout=self._timeout)
        except KubeNotFound:
            return None
        metadata = namespace.metadata
        return dict(metadata.labels or {}) if metadata is not None else {}
