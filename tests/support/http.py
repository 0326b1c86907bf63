"""The test tree's aiohttp client sessions: each one opened for a test and closed after it.

``session_fixture(name)`` makes the fixture a conftest needs (``session = session_fixture()``,
``http = session_fixture("http")``); ``opened(cleanups)`` opens one for a stack fixture that
closes what it started in reverse order at teardown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

Cleanups = list[Callable[[], Awaitable[None]]]


def session_fixture(name: str = "session") -> Any:
    """A fixture called ``name`` that gives a test one ClientSession and closes it after."""

    @pytest.fixture(name=name)
    async def fixture() -> AsyncIterator[aiohttp.ClientSession]:
        async with aiohttp.ClientSession() as session:
            yield session

    return fixture


def opened(cleanups: Cleanups) -> aiohttp.ClientSession:
    """A new ClientSession whose close is registered with the stack's ``cleanups``."""
    session = aiohttp.ClientSession()
    cleanups.append(session.close)
    return session
