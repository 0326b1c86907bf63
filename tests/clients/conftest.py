"""Fixtures of the real-client suite: the clients' environments, the stack, a driver call.

``client_env(name)`` (session) builds or reuses the client's cached environment; when that
fails the test is skipped with the reason, or fails when LAKEGATE_CLIENT_ENVS=required (CI).
``client_stack`` (per test) is the emulator and lakegate on loopback (``stack.py``).
``drive(client, driver, target, **args)`` runs a driver against one target and returns its
``Outcome``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.clients.envs import ClientEnv, EnvBuildError, builds_required, ensure
from tests.clients.runner import Outcome, run_driver
from tests.clients.stack import ClientStack, client_stack

EnvFactory = Callable[[str], ClientEnv]
Drive = Callable[..., Awaitable[Outcome]]
TARGETS = ("emulator", "lakegate")


@pytest.fixture(scope="session")
def client_env() -> EnvFactory:
    built: dict[str, ClientEnv] = {}
    refused: dict[str, str] = {}

    def get(client: str) -> ClientEnv:
        if client not in built and client not in refused:
            try:
                built[client] = ensure(client)
            except EnvBuildError as exc:
                refused[client] = str(exc)
        if client in refused:
            reason = f"the {client} environment could not be built: {refused[client]}"
            if builds_required():
                pytest.fail(reason)
            pytest.skip(reason + " (set LAKEGATE_CLIENT_ENVS=required to fail instead)")
        return built[client]

    return get


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[ClientStack]:
    async with client_stack(tmp_path) as running:
        yield running


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def drive(client_env: EnvFactory, stack: ClientStack, tmp_path: Path) -> Drive:
    async def call(
        client: str, driver: str, target: str, env: dict[str, str] | None = None, **args: Any
    ) -> Outcome:
        # The environment comes first, so a skipped client starts no subprocess; off the loop,
        # which serves the stack, since a cold build takes minutes.
        environment = await asyncio.to_thread(client_env, client)
        payload = {**stack.targets[target].args(), "run_name": f"clients-{uuid.uuid4().hex[:8]}"}
        payload.update(args)
        extra = {**stack.tls.client_environment(), **(env or {})}
        home = tmp_path / f"home-{driver}-{target}"
        home.mkdir(parents=True, exist_ok=True)
        return await run_driver(environment, driver, payload, home=home, extra_env=extra)

    return call
