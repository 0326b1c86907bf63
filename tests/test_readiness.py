"""Readiness checks: registered by what opens a resource, reported for as long as it is open."""

from __future__ import annotations

import pytest

from gateway.readiness import Check, ReadinessChecks


def answer(ok: bool, detail: str) -> Check:
    async def check() -> tuple[bool, str]:
        return ok, detail

    return check


async def test_checks_are_reported_in_the_order_they_were_registered() -> None:
    """One loop over the registry: every check, by name, in registration order."""
    checks = ReadinessChecks()
    checks.add("workspaces", answer(True, "1 workspace(s) on the allow-list"))
    with checks.registered("store", answer(False, "disk full")):
        report = await checks()
    assert list(report.items()) == [
        ("workspaces", (True, "1 workspace(s) on the allow-list")),
        ("store", (False, "disk full")),
    ]


async def test_a_scoped_check_leaves_with_its_resource() -> None:
    """A check registered for a block is no longer reported once the block has ended."""
    checks = ReadinessChecks()
    with checks.registered("kubernetes", answer(True, "watching")):
        assert "kubernetes" in checks
    assert "kubernetes" not in checks
    assert await checks() == {}


def test_a_name_is_registered_once() -> None:
    """Two resources reporting under one name would hide one of them: refused."""
    checks = ReadinessChecks()
    checks.add("store", answer(True, "sqlite"))
    with pytest.raises(ValueError, match="already registered"):
        checks.add("store", answer(True, "sqlite"))
