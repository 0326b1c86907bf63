"""Which Databricks identity a namespace runs as, and the credentials that prove it.

``kinds`` holds one strategy per kind of identity (what ``strategy`` says a kind is made of);
``plans`` decides which identity a namespace gets, without I/O; ``default`` reads the
gateway's own; ``resolver`` does the I/O of deciding, and ``builders`` turns a plan into a
cached credential (each a ``gateway.databricks.auth.TokenProvider``).
"""
