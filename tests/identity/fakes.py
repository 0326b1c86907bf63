"""Fakes for the identity tests: a clock that moves on command, token sources, an observer,
and the kube edge's Secret reads and TokenRequests."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.databricks.auth import AccessToken
from gateway.errors import KubernetesError
from gateway.identity.cache import REFRESH_TASK_PREFIX
from gateway.kube import Target
from gateway.kube.status import StatusInfo, error_from_status
from tests.support.jwt_issuer import Issuer, service_account_subject


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


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


@dataclass(frozen=True)
class Minted:
    value: str
    expires_at: datetime | None = None


class FakeKube:
    """The kube edge's two identity calls, failing as it does. Secrets by (namespace, name),
    every read recorded; an absent one is KubeNotFound, as the API server says; ``refusals``
    fail a read with the error given, and ``gate``, when set, holds every read. TokenRequests
    are recorded, and answered by ``minter`` or, without one, refused as RBAC would."""

    def __init__(self, minter: Minter | None = None) -> None:
        self.secrets: dict[tuple[str, str], dict[str, bytes]] = {}
        self.refusals: dict[tuple[str, str], KubernetesError] = {}
        self.reads: list[tuple[str, str]] = []
        self.mints: list[tuple[str, str, list[str], int]] = []
        self.gate: asyncio.Event | None = None
        self.minter = minter

    def put(self, namespace: str, name: str, **values: str) -> None:
        self.secrets[(namespace, name)] = {k: v.encode() for k, v in values.items()}

    def hold(self) -> asyncio.Event:
        self.gate = asyncio.Event()
        return self.gate

    def forbid(self, namespace: str, name: str) -> None:
        message = f'secrets "{name}" is forbidden: User "lakegate" cannot get resource'
        self.refusals[(namespace, name)] = _secret_error(namespace, name, 403, message)

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        self.reads.append((namespace, name))
        if self.gate is not None:
            await self.gate.wait()
        if (namespace, name) in self.refusals:
            raise self.refusals[(namespace, name)]
        if (namespace, name) not in self.secrets:
            raise _secret_error(namespace, name, 404, f'secrets "{name}" not found')
        return dict(self.secrets[(namespace, name)])

    async def mint_token(
        self,
        namespace: str,
        service_account: str,
        *,
        audiences: Sequence[str],
        expiration_seconds: int = 3600,
    ) -> Minted:
        self.mints.append((namespace, service_account, list(audiences), expiration_seconds))
        if self.minter is None:
            raise error_from_status(
                403,
                StatusInfo(
                    code=403, reason="Forbidden", message="cannot create serviceaccounts/token"
                ),
                action="create a token for",
                target=Target("serviceaccount", namespace, service_account),
            )
        token = await self.minter(namespace, service_account, list(audiences), expiration_seconds)
        expires = token.expires_at
        at = None if expires is None else datetime.fromtimestamp(expires, UTC)
        return Minted(token.value, at)


def _secret_error(namespace: str, name: str, code: int, message: str) -> KubernetesError:
    """The error the kube edge raises for a Secret read answered with ``code``."""
    reason = {403: "Forbidden", 404: "NotFound"}.get(code)
    return error_from_status(
        code,
        StatusInfo(code=code, reason=reason, message=message),
        action="read",
        target=Target("secret", namespace, name),
    )
