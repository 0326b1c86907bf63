"""Listing and watching ServiceAccounts over the shared ``ApiClient``, as raw JSON.

We call the generated list functions with ``_preload_content=False`` and read the answer
ourselves instead of using ``kubernetes_asyncio.watch.Watch``: ``Watch`` builds a second
``ApiClient`` (and aiohttp session, and SSL context) from the global default configuration
for every stream, and turns a refused watch into an exception without the Status body. Reading
lines ourselves keeps one client, keeps the API server's message for a 403, and treats an HTTP
410 and an in-stream ERROR 410 the same way, as ``KubeExpired``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from kubernetes_asyncio import client

from gateway.errors import KubernetesError
from gateway.kube.accounts import MalformedObject, ServiceAccountRef
from gateway.kube.status import StatusInfo, Target, error_from_status, parse_status, translated
from gateway.selectors import LabelSelector

EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
_OBJECT_EVENTS = frozenset({"ADDED", "MODIFIED", "DELETED"})
# A watch may be silent for its whole timeoutSeconds; the read timeout must outlast that.
WATCH_READ_SLACK_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: EventType
    resource_version: str | None
    account: ServiceAccountRef | None = None


@dataclass(frozen=True, slots=True)
class Listing:
    accounts: tuple[ServiceAccountRef, ...]
    resource_version: str


def parse_event_line(line: bytes, target: Target) -> WatchEvent | None:
    """One line of a watch stream; None for lines that carry nothing (blank, unknown type)."""
    text = line.strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise KubernetesError(f"Kubernetes sent a malformed watch event for {target}") from exc
    if not isinstance(data, dict):
        raise KubernetesError(f"Kubernetes sent a malformed watch event for {target}")
    kind, obj = data.get("type"), data.get("object")
    if not isinstance(obj, dict) or not isinstance(kind, str):
        if isinstance(data.get("code"), int):
            # A bare Status instead of an event: the request failed before the stream began.
            raise error_from_status(data["code"], _status_of(data), action="watch", target=target)
        raise KubernetesError(f"Kubernetes sent a watch event without type or object ({target})")
    if kind == "ERROR":
        status = _status_of(obj)
        raise error_from_status(status.code or 500, status, action="watch", target=target)
    if kind == "BOOKMARK":
        rv = _metadata(obj).get("resourceVersion")
        if not isinstance(rv, str) or not rv:
            raise KubernetesError(f"Kubernetes sent a bookmark without resourceVersion ({target})")
        return WatchEvent("BOOKMARK", rv)
    if kind not in _OBJECT_EVENTS:
        return None
    try:
        account = ServiceAccountRef.from_raw(obj)
    except MalformedObject as exc:
        raise KubernetesError(f"Kubernetes sent a malformed {target}: {exc}") from exc
    return WatchEvent(kind, account.resource_version or None, account)  # type: ignore[arg-type]


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _status_of(obj: Mapping[str, Any]) -> StatusInfo:
    return parse_status(json.dumps(obj))


class AccountSource(Protocol):
    """What a reflector needs: list (all, or one namespace) and watch one selection."""

    selector: LabelSelector
    namespace: str | None

    async def list(self, namespace: str | None = None) -> Listing: ...

    async def watch(
        self,
        resource_version: str,
        *,
        timeout_seconds: int,
        on_event: Callable[[WatchEvent], None],
        on_open: Callable[[], None] = ...,
    ) -> int: ...


class ServiceAccountSource:
    """List and watch the ServiceAccounts one selector picks, in one namespace or in all."""

    def __init__(
        self,
        api: Any,
        *,
        selector: LabelSelector,
        namespace: str | None,
        request_timeout: tuple[float, float],
        page_size: int = 500,
    ) -> None:
        self._core = client.CoreV1Api(api)
        self.selector = selector
        self.namespace = namespace
        self._timeout = request_timeout
        self._page_size = page_size

    def target(self, namespace: str | None = None) -> Target:
        return Target("serviceaccounts", namespace or self.namespace)

    def _call(self, namespace: str | None) -> Callable[..., Any]:
        if namespace is None:
            return self._core.list_service_account_for_all_namespaces
        return lambda **kw: self._core.list_namespaced_service_account(namespace, **kw)

    async def list(self, namespace: str | None = None) -> Listing:
        """Every matching account, page by page; ``namespace`` narrows an all-namespace scope."""
        scope = namespace or self.namespace
        call, target = self._call(scope), self.target(scope)
        accounts: list[ServiceAccountRef] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"label_selector": self.selector.text() or None}
            kwargs["limit"] = self._page_size
            if token:
                kwargs["_continue"] = token
            page = await self._get_json(call, kwargs, "list", target)
            items = page.get("items")
            if not isinstance(items, list):
                raise KubernetesError(f"Kubernetes listed {target} without items")
            try:
                accounts.extend(ServiceAccountRef.from_raw(i) for i in items if isinstance(i, dict))
            except MalformedObject as exc:
                raise KubernetesError(f"Kubernetes listed a malformed {target}: {exc}") from exc
            meta = _metadata(page)
            token = meta.get("continue") or None
            if not token:
                return Listing(tuple(accounts), str(meta.get("resourceVersion") or ""))

    async def _get_json(
        self, call: Callable[..., Any], kwargs: dict[str, Any], action: str, target: Target
    ) -> dict[str, Any]:
        with translated(action, target):
            resp = await call(**kwargs, _preload_content=False, _request_timeout=self._timeout)
            try:
                body = await resp.read()
            finally:
                resp.release()
        if resp.status >= 300:
            raise error_from_status(resp.status, parse_status(body), action=action, target=target)
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise KubernetesError(f"Kubernetes sent a malformed list of {target}") from exc
        if not isinstance(data, dict):
            raise KubernetesError(f"Kubernetes sent a malformed list of {target}")
        return data

    async def watch(
        self,
        resource_version: str,
        *,
        timeout_seconds: int,
        on_event: Callable[[WatchEvent], None],
        on_open: Callable[[], None] = lambda: None,
    ) -> int:
        """Watch from ``resource_version`` until the server ends the stream; events seen.

        ``on_open`` runs once the server has accepted the watch (a 2xx answer), before any event.

        Raises ``KubeExpired`` when the version is too old (relist), ``KubeForbidden`` when
        RBAC does not allow watching, other ``KubernetesError`` for the rest.
        """
        target = self.target()
        read_timeout = timeout_seconds + WATCH_READ_SLACK_SECONDS
        seen = 0
        with translated("watch", target):
            resp = await self._call(self.namespace)(
                label_selector=self.selector.text() or None,
                watch=True,
                resource_version=resource_version or None,
                allow_watch_bookmarks=True,
                # Always finite: without it the server holds the stream for up to an hour.
                timeout_seconds=timeout_seconds,
                _preload_content=False,
                _request_timeout=(self._timeout[0], read_timeout),
            )
            clean = False
            try:
                if resp.status >= 300:
                    status = parse_status(await resp.read())
                    raise error_from_status(resp.status, status, action="watch", target=target)
                on_open()
                while line := await resp.content.readline():
                    event = parse_event_line(line, target)
                    if event is not None:
                        seen += 1
                        on_event(event)
                clean = True
            finally:
                # A half-read stream cannot go back to the pool; only a finished one may.
                if clean:
                    resp.release()
                else:
                    resp.close()
        return seen
