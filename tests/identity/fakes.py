"""Fakes for the identity tests: a clock that moves on command, token sources, an observer
and a TokenRequest minter (the fake Kubernetes client is ``tests.support.kube``)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from gateway.databricks.auth import AccessToken
from gateway.identity.cache import REFRESH_TASK_PREFIX
from tests.support.clock import Clock
from tests.support.jwt_issuer import Issuer, service_account_subject
from tests.support.kube import FakeKube, Minted


class Source:
    """A token source that counts its fetches; tokens are ``<prefix>-<n>``.

    ``gate``, when set, holds every fetch until the test opens it; ``errors`` are raised by
    the next fetches, in order, before tokens are handed out again.
    """

    def __init__(self, clock: Clock, *, ttl: float | None = 3600.0, prefix: str = "tok") -> None:
        self.clock = clock
        self.ttl = ttl
        self.prefix = prefix
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.errors: list[Exception] = []

    def hold(self) -> asyncio.Event:
        self.gate = asyncio.Event()
        return self.gate

    async def __call__(self) -> AccessToken:
        self.calls += 1
        number = self.calls
        if self.gate is not None:
            await self.gate.wait()
        if self.errors:
            raise self.errors.pop(0)
        expires_at = None if self.ttl is None else self.clock.now + self.ttl
        return AccessToken(f"{self.prefix}-{number}", expires_at)


@dataclass
class Observer:
    """Records what the cache reports, as ``gateway.metrics.Metrics`` would count it."""

    events: Counter[tuple[str, str]] = field(default_factory=Counter)
    fetches: list[tuple[str, str | None]] = field(default_factory=list)

    def observe_token_event(self, event: str, kind: str) -> None:
        self.events[(event, kind)] += 1

    def observe_token_fetch(self, kind: str, seconds: float, error: str | None) -> None:
        assert seconds >= 0
        self.fetches.append((kind, error))


async def settle(within: float = 10.0) -> None:
    """Wait until no token refresh task is running (a bound generous for a loaded CI box)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        await asyncio.sleep(0.005)
        if not any(t.get_name().startswith(REFRESH_TASK_PREFIX) for t in asyncio.all_tasks()):
            return
    raise AssertionError("a token refresh is still running")


class Minter:
    """TokenRequest as the kube edge performs it, counted: a JWT for the ServiceAccount."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self.calls: list[tuple[str, str, list[str], int]] = []

    async def __call__(
        self, namespace: str, service_account: str, audiences: list[str], expiration_seconds: int
    ) -> AccessToken:
        self.calls.append((namespace, service_account, audiences, expiration_seconds))
        subject = service_account_subject(namespace, service_account)
        value = self.issuer.sign(subject, aud=audiences, lifetime=expiration_seconds)
        return AccessToken(value, time.time() + expiration_seconds)


__all__ = ["Clock", "FakeKube", "Minted", "Minter", "Observer", "Source", "settle"]
