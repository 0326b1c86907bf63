-- The poller refreshes the active runs of one identity group (a namespace and the identity
-- choice its runs were submitted under) together, every interval. This index holds only the
-- runs Databricks is running, so it stays as small as the live work, and gives them in id
-- order without reading the namespace's other groups or its ended runs. The poller's query
-- repeats this WHERE word for word, which is what lets SQLite use a partial index.
CREATE INDEX runs_group_active ON runs (namespace, identity_ref)
    WHERE state IN ('PENDING', 'RUNNING', 'TERMINATING') AND databricks_run_id IS NOT NULL;
