"""The doctor's tests run the real gateway and the real CLI in one process: the gateway's logs
go to stderr here (as ``lakegate serve`` sends them), so stdout is the CLI's alone."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _logs_on_stderr() -> Iterator[None]:
    saved = structlog.get_config()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    try:
        yield
    finally:
        structlog.configure(**saved)


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own LAKEGATE_* variables must not leak into the tests."""
    for name in ("LAKEGATE_URL", "LAKEGATE_TOKEN", "LAKEGATE_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
