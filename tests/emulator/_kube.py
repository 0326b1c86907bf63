"""Helpers for the fake Kubernetes API's tests: Status bodies and bounded watches."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from kubernetes_asyncio import client, watch

from gateway.emulator.kubernetes import KubeApiServer

OnEvent = Callable[[int, dict[str, Any]], Awaitable[None] | None]


def status_of(exc: client.ApiException) -> dict[str, Any]:
    """The Status object an ApiException carries as its body text."""
    assert exc.body is not None
    body: dict[str, Any] = json.loads(exc.body)
    return body


def uid_of(kube: KubeApiServer, namespace: str, name: str) -> str:
    """The UID the fake API gave a ServiceAccount."""
    sa = kube.service_account(namespace, name)
    assert sa is not None
    uid: str = sa["metadata"]["uid"]
    return uid


async def raw_response(call: Awaitable[Any]) -> aiohttp.ClientResponse:
    """What a client call made with ``_preload_content=False`` returns (typed as str)."""
    response = await call
    assert isinstance(response, aiohttp.ClientResponse)
    return response


async def watch_events(
    func: Callable[..., Any],
    *args: Any,
    count: int | None = None,
    on_event: OnEvent | None = None,
    limit: float = 5.0,
    **kwargs: Any,
) -> tuple[list[dict[str, Any]], watch.Watch]:
    """Events of one watch, until ``count`` arrived or the stream ended; never over ``limit`` s.

    ``on_event(index, event)`` runs after each event, to change the cluster mid-stream.
    """
    kwargs.setdefault("timeout_seconds", 5)
    w = watch.Watch()
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(limit), w.stream(func, *args, **kwargs) as stream:
        async for event in stream:
            events.append(event)
            if on_event is not None:
                result = on_event(len(events) - 1, event)
                if result is not None:
                    await result
            if count is not None and len(events) >= count:
                break
    return events, w


def names(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(type, object name) per event; bookmarks show their resourceVersion instead."""
    out = []
    for event in events:
        raw = event["raw_object"]
        if event["type"] == "BOOKMARK":
            out.append(("BOOKMARK", raw["metadata"]["resourceVersion"]))
        else:
            out.append((event["type"], raw["metadata"]["name"]))
    return out
