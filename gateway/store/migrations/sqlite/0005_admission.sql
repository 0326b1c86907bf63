-- Admission reads, on every submission and every admission pass.
-- The rate window: a namespace's runs by creation time, newest first.
CREATE INDEX runs_namespace_created ON runs (namespace, created_at);
-- The queue: only QUEUED runs, oldest first within a namespace. The queries repeat this WHERE
-- word for word, which is what lets SQLite use a partial index.
CREATE INDEX runs_queued ON runs (namespace, id) WHERE state = 'QUEUED';
-- A workspace's active runs, for its cap across namespaces.
CREATE INDEX runs_workspace_state ON runs (workspace, state);
