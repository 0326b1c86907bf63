"""lakegate: a multi-tenant gateway between job schedulers and the Databricks Jobs API."""

__version__ = "0.1.0"
