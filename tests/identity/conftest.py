"""A scripted HTTP server per test, closed after it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.databricks.scripted import ScriptedServer


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    scripted = ScriptedServer()
    await scripted.start()
    yield scripted
    await scripted.close()
