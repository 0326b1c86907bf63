"""ServiceAccount watches: one compact JSON event per line, as the apiserver's cacher sends.

A watch from an unset or ``"0"`` resourceVersion starts with a synthetic ADDED per match;
from ``"N"`` it replays the kept events after N, or, when N is older than the history, sends
HTTP 200 and one ERROR 410 Expired event and ends. A watch with a selector sees an object
that stops matching as DELETED and one that starts matching as ADDED. BOOKMARKs go only to
watches that allow them, on a timer or when the admin asks; the stream ends cleanly at
``timeoutSeconds``. No blank keep-alive lines: the client would hand them to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from aiohttp import web

from gateway.emulator.kubernetes.access import query_bool
from gateway.emulator.kubernetes.config import WatchConfig
from gateway.emulator.kubernetes.objects import ServiceAccount
from gateway.emulator.kubernetes.selectors import Selection
from gateway.emulator.kubernetes.status import StatusError, error_event, invalid
from gateway.emulator.kubernetes.store import ChangeEvent, Store

INITIAL_EVENTS_END = "k8s.io/initial-events-end"
# Set once a watch's 200 is on the wire, so a client hanging up later still counts as a 200.
STREAM_STARTED = web.RequestKey("lakegate_kube_emulator_stream_started", bool)


@dataclass(frozen=True)
class Control:
    """An admin signal to open watches; ``rv`` is the resourceVersion when it was sent."""

    kind: Literal["bookmark", "expire", "close"]
    rv: int


@dataclass(eq=False)
class Watcher:
    selection: Selection
    bookmarks: bool
    last_rv: int
    queue: asyncio.Queue[ChangeEvent | Control] = field(default_factory=asyncio.Queue)

    def translate(self, event: ChangeEvent) -> dict[str, Any] | None:
        """The event as this watch's selection sees it, or None when it sees nothing."""
        now = self.selection.matches(event.obj)
        before = event.previous is not None and self.selection.matches(event.previous)
        if event.type == "MODIFIED":
            if now and not before:
                return _event("ADDED", event.obj)
            if before and not now and event.previous is not None:
                # The cacher sends the last state that matched, at the change's version.
                gone = replace(event.previous, resource_version=event.resource_version)
                return _event("DELETED", gone)
        return _event(event.type, event.obj) if now else None


def _event(kind: str, sa: ServiceAccount) -> dict[str, Any]:
    return {"type": kind, "object": sa.to_json()}


def _bookmark(rv: int, *, initial_end: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        metadata["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {
        "type": "BOOKMARK",
        "object": {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": metadata},
    }


def _line(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True)
class _Start:
    initial: list[ServiceAccount]
    replay: list[ChangeEvent]
    initial_end_bookmark: bool
    too_old: str | None


class WatchHub:
    """The open watches; the store's changes and the admin's signals fan out to them."""

    def __init__(self, store: Store, config: WatchConfig) -> None:
        self._store = store
        self._config = config
        self._watchers: set[Watcher] = set()
        self.started = 0
        store.listen(self._publish)

    @property
    def open_count(self) -> int:
        return len(self._watchers)

    def _publish(self, event: ChangeEvent) -> None:
        for watcher in self._watchers:
            watcher.queue.put_nowait(event)

    def _signal(self, kind: Literal["bookmark", "expire", "close"]) -> int:
        control = Control(kind, self._store.resource_version)
        for watcher in self._watchers:
            watcher.queue.put_nowait(control)
        return len(self._watchers)

    def send_bookmarks(self) -> int:
        """A BOOKMARK now to every open watch that allows them; how many watches got one."""
        self._signal("bookmark")
        return sum(1 for w in self._watchers if w.bookmarks)

    def expire(self) -> int:
        """Make every resourceVersion handed out so far too old, and end open watches with
        ERROR 410, as after an etcd compaction; the next list gives a usable version."""
        self._store.tick()
        self._store.compact()
        return self._signal("expire")

    def close_all(self) -> int:
        """End every open watch cleanly, as a server-side timeout would."""
        return self._signal("close")

    def _start(self, selection: Selection, query: Mapping[str, str]) -> _Start:
        rv_param = query.get("resourceVersion", "")
        initial_flag = query.get("sendInitialEvents")
        send_initial = initial_flag is not None and query_bool(query, "sendInitialEvents")
        if send_initial:
            _check_streaming_list(query)
        if rv_param not in ("", "0"):
            try:
                rv = int(rv_param)
            except ValueError:
                raise StatusError(400, f'invalid resource version "{rv_param}"') from None
            if not send_initial:
                replay = self._store.events_after(rv)
                if replay is None:
                    oldest = self._store.compacted_rv + 1
                    return _Start([], [], False, f"too old resource version: {rv} ({oldest})")
                return _Start([], replay, False, None)
        elif initial_flag is not None and not send_initial:
            # "Start at most recent" without the synthetic events.
            return _Start([], [], False, None)
        matches = [sa for sa in self._store.list_service_accounts() if selection.matches(sa)]
        return _Start(matches, [], send_initial, None)

    async def serve(
        self, request: web.Request, selection: Selection, query: Mapping[str, str]
    ) -> web.StreamResponse:
        """Answer one watch request; returns when the stream has ended."""
        seconds = _timeout(query, self._config.default_timeout_seconds)
        # Snapshot and subscription happen with no await between them, so no change is
        # either missed or sent twice.
        start = self._start(selection, query)
        bookmarks = query_bool(query, "allowWatchBookmarks")
        watcher = Watcher(selection, bookmarks, self._store.resource_version)
        self._watchers.add(watcher)
        self.started += 1
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            request[STREAM_STARTED] = True
            with contextlib.suppress(ConnectionResetError):
                await self._stream(response, watcher, start, seconds)
        finally:
            self._watchers.discard(watcher)
        return response

    async def _stream(
        self, response: web.StreamResponse, watcher: Watcher, start: _Start, seconds: float
    ) -> None:
        if start.too_old is not None:
            await response.write(_line(error_event(410, start.too_old)))
            return
        for sa in start.initial:
            await response.write(_line(_event("ADDED", sa)))
        if start.initial_end_bookmark:
            await response.write(_line(_bookmark(watcher.last_rv, initial_end=True)))
        for event in start.replay:
            if (translated := watcher.translate(event)) is not None:
                await response.write(_line(translated))
        await self._follow(response, watcher, asyncio.get_running_loop().time() + seconds)

    async def _follow(
        self, response: web.StreamResponse, watcher: Watcher, deadline: float
    ) -> None:
        """Send changes and signals as they come, and timed bookmarks, until the deadline."""
        loop = asyncio.get_running_loop()
        interval = self._config.bookmark_interval_seconds
        every = interval if watcher.bookmarks and interval else math.inf
        next_bookmark = loop.time() + every
        while (now := loop.time()) < deadline:
            try:
                item = await asyncio.wait_for(
                    watcher.queue.get(), min(deadline, next_bookmark) - now
                )
            except TimeoutError:
                if loop.time() >= next_bookmark:
                    # The queue is empty, so every change up to now has been sent.
                    await response.write(_line(_bookmark(self._store.resource_version)))
                    next_bookmark = loop.time() + every
                continue
            if not await self._deliver(response, watcher, item):
                return

    async def _deliver(
        self, response: web.StreamResponse, watcher: Watcher, item: ChangeEvent | Control
    ) -> bool:
        """Write what ``item`` means to this watch; False when the stream must end."""
        if isinstance(item, ChangeEvent):
            watcher.last_rv = item.resource_version
            if (translated := watcher.translate(item)) is not None:
                await response.write(_line(translated))
        elif item.kind == "bookmark":
            if watcher.bookmarks:
                await response.write(_line(_bookmark(item.rv)))
        elif item.kind == "expire":
            oldest = self._store.compacted_rv + 1
            message = f"too old resource version: {watcher.last_rv} ({oldest})"
            await response.write(_line(error_event(410, message)))
            return False
        else:
            return False
        return True


def _timeout(query: Mapping[str, str], default: float) -> float:
    raw = query.get("timeoutSeconds")
    if raw is None:
        return default
    try:
        seconds = int(raw)
    except ValueError:
        raise StatusError(400, f'invalid timeoutSeconds "{raw}"') from None
    # Zero means "the server's choice", as an unset value does.
    return float(seconds) if seconds > 0 else default


def _check_streaming_list(query: Mapping[str, str]) -> None:
    """sendInitialEvents needs resourceVersionMatch=NotOlderThan and bookmarks."""
    causes: list[tuple[str, str, str]] = []
    if query.get("resourceVersionMatch") != "NotOlderThan":
        value = f'"{query.get("resourceVersionMatch", "")}"'
        causes.append(("resourceVersionMatch", value, "sendInitialEvents requires NotOlderThan"))
    if not query_bool(query, "allowWatchBookmarks"):
        causes.append(("allowWatchBookmarks", "false", "sendInitialEvents requires true"))
    if causes:
        raise invalid("ListOptions", "meta.k8s.io", "", causes)
