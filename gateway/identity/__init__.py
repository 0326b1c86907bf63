"""Which Databricks identity a namespace runs as, and the credentials that prove it.

``credentials`` holds the credential kinds (each a ``gateway.databricks.auth.TokenProvider``);
``resolver`` decides which one a namespace gets.
"""
