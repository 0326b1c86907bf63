"""The Databricks edge: the Jobs API client, its wire format, retries and token endpoints.

Nothing here knows namespaces' policies or the ledger; identity and runs build on it.
"""

from gateway.databricks.auth import AccessToken, TokenProvider
from gateway.databricks.jobs import JobsClient, Workspace
from gateway.databricks.retries import RetryPolicy
from gateway.databricks.wire import RunSnapshot, RunsPage, TaskSnapshot

__all__ = [
    "AccessToken",
    "JobsClient",
    "RetryPolicy",
    "RunSnapshot",
    "RunsPage",
    "TaskSnapshot",
    "TokenProvider",
    "Workspace",
]
