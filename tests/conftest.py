"""Test ground shared by every test: no blocking calls in our code, and log capture."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from blockbuster import BlockBuster, blockbuster_ctx
from hypothesis import settings

pytest_plugins = [
    "tests.fixtures.databricks_emulator",
    "tests.fixtures.gateway",
    "tests.fixtures.kube_api",
    "tests.fixtures.identity_stack",
]

# CI runs on a clean clone, without the example database a developer's runs keep in
# .hypothesis/: there each property test draws the same examples every run, so a red CI is
# the code's doing and reproducible, while local runs go on exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("LAKEGATE_HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    """Fail any test in which lakegate's own code blocks the event loop.

    Only frames from the ``gateway`` package are scanned: the synchronous Databricks SDK that
    some tests drive from a worker thread is allowed to block its own thread.
    """
    with blockbuster_ctx(["gateway"]) as bb:
        yield bb
