"""Fixtures of the Git credential tests: the Azure stack (``tests.gitcreds.stack``), and the
scripted server and session the client's unit tests use."""

from tests.databricks.scripted import server  # noqa: F401 (a fixture)
from tests.gitcreds.stack import azure_stack_factory
from tests.support.http import session_fixture

session = session_fixture()

__all__ = ["azure_stack_factory", "session"]
