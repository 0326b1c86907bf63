-- get-output takes Databricks' task run ids; finding the namespace's run a task belongs to
-- must not scan the namespace's ledger.
CREATE INDEX runs_namespace_remote ON runs (namespace, databricks_run_id)
    WHERE databricks_run_id IS NOT NULL;
