"""The client-environment builder: cached by pin hash, rebuilt on a pin change, one build at once.

A real (tiny) environment: one pinned package from the package index, so this takes seconds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.clients.envs import COMPLETE, ClientEnv, EnvBuildError, builds_required, ensure, env_key

pytestmark = [pytest.mark.clients, pytest.mark.e2e, pytest.mark.timeout(600)]


def _pins(folder: Path, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "tiny.txt").write_text(text, encoding="utf-8")
    return folder


def _build_or_skip(pins: Path, root: Path) -> ClientEnv:
    """A build that needs the package index: skipped without one, as the client suites are."""
    try:
        return ensure("tiny", pins=pins, root=root)
    except EnvBuildError as exc:
        if builds_required():
            raise
        pytest.skip(f"the package index cannot be reached: {exc}")


async def test_concurrent_builds_build_once_and_later_runs_reuse(tmp_path: Path) -> None:
    """Two builds at once: one builds, the other waits on the lock and reuses its result."""
    pins, root = _pins(tmp_path / "pins", "six==1.17.0\n"), tmp_path / "cache"
    first, second = await asyncio.gather(
        asyncio.to_thread(_build_or_skip, pins, root), asyncio.to_thread(_build_or_skip, pins, root)
    )
    assert first.path == second.path
    assert sorted([first.built_seconds > 0, second.built_seconds > 0]) == [False, True]
    assert (first.path / COMPLETE).is_file()
    assert ensure("tiny", pins=pins, root=root).built_seconds == 0.0


def test_a_changed_pin_builds_anew_and_removes_the_old_env(tmp_path: Path) -> None:
    pins, root = _pins(tmp_path / "pins", "six==1.17.0\n"), tmp_path / "cache"
    _build_or_skip(pins, root)
    old = root / env_key("tiny", pins)
    _pins(pins, "six==1.16.0\n")
    rebuilt = _build_or_skip(pins, root)
    assert rebuilt.path != old
    assert rebuilt.built_seconds > 0
    assert not old.exists()


def test_a_failed_build_says_why_and_leaves_nothing_half_built(tmp_path: Path) -> None:
    pins, root = _pins(tmp_path / "pins", "lakegate-no-such-package==0.0.0\n"), tmp_path / "cache"
    with pytest.raises(EnvBuildError, match="exited"):
        ensure("tiny", pins=pins, root=root)
    assert not (root / env_key("tiny", pins)).exists()
