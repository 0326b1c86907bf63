"""``server.event_loop``: asyncio's loop by default, uvloop when asked and installed, and a
refusal naming the fix when it is asked but missing."""

from __future__ import annotations

import asyncio

import pytest

from gateway.serving import run
from gateway.settings.process import ServerSettings, event_loop_problem


def loop_module(event_loop: str) -> str:
    seen: list[str] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)

    run(main(), event_loop=event_loop)
    return seen[0]


def test_the_default_loop_is_asyncios() -> None:
    """Without the setting, serve runs on asyncio's own event loop."""
    assert ServerSettings().event_loop == "asyncio"
    assert loop_module("asyncio").startswith("asyncio")


def test_uvloop_runs_when_configured() -> None:
    """event_loop: uvloop runs the server's coroutine on uvloop's loop."""
    assert ServerSettings(event_loop="uvloop").event_loop == "uvloop"
    assert loop_module("uvloop").startswith("uvloop")


def test_uvloop_missing_is_refused_with_the_fix() -> None:
    """Asking for uvloop where it is not installed is a settings problem saying what to do."""
    problem = event_loop_problem("uvloop", find_spec=lambda _name: None)
    assert problem is not None
    assert "not installed" in problem
    assert "lakegate[uvloop]" in problem
    assert event_loop_problem("asyncio", find_spec=lambda _name: None) is None


def test_an_unknown_loop_is_refused() -> None:
    """Only the two loops lakegate knows are accepted."""
    with pytest.raises(ValueError, match="event_loop"):
        ServerSettings(event_loop="trio")  # type: ignore[arg-type]
