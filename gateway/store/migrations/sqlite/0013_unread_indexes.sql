-- Two indexes of runs that no query reads any more, which every accepted submit still paid
-- for: each was written three times per submit (the insert, then the old and the new entry of
-- the move to PENDING), each write touching that namespace's leaf page in the commit's WAL.
-- runs_workspace_state served a workspace's active-run count, which run_counts answers since
-- migration 12. runs_namespace_state served the queue's heads of chosen namespaces, which
-- runs_queued (namespace, id) WHERE state = 'QUEUED' answers with only the queued runs in it.
-- tests/store/test_index_use.py shows every remaining index of runs is read by a query.
DROP INDEX IF EXISTS runs_workspace_state;
DROP INDEX IF EXISTS runs_namespace_state;
