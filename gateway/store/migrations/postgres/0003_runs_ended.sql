-- As SQLite's migration 0011: the runs that ended, by creation time, with when they ended, so
-- the mean run time a refusal's Retry-After is measured from is an index-only range. A run
-- enters it once, when it ends. The state list is gateway.model.TERMINAL_STATES; the query
-- repeats it (a parameter would not match the index's predicate).
CREATE INDEX runs_ended ON runs (namespace, created_at) INCLUDE (updated_at)
    WHERE state IN ('CANCELED', 'FAILED', 'INTERNAL_ERROR', 'REJECTED', 'SKIPPED', 'SUCCEEDED',
                    'TIMED_OUT');
