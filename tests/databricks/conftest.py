"""Fixtures of the Databricks edge's tests: a scripted server and a client session per test."""

from __future__ import annotations

from tests.databricks.scripted import server  # noqa: F401 (a fixture)
from tests.support.http import session_fixture

session = session_fixture()
