"""Test ground shared by every test: no blocking calls in our code, and log capture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from blockbuster import BlockBuster, blockbuster_ctx

pytest_plugins = [
    "tests.fixtures.databricks_emulator",
    "tests.fixtures.gateway",
    "tests.fixtures.kube_api",
    "tests.fixtures.identity_stack",
]


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    """Fail any test in which lakegate's own code blocks the event loop.

    Only frames from the ``gateway`` package are scanned: the synchronous Databricks SDK that
    some tests drive from a worker thread is allowed to block its own thread.
    """
    with blockbuster_ctx(["gateway"]) as bb:
        yield bb
