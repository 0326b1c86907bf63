-- The runs that ended, by creation time, with when they ended: the mean run time a refusal's
-- Retry-After is measured from (the day's ended runs of a namespace) is then an index range,
-- not a read of every row the namespace created that day. Partial, so a run enters it once,
-- when it ends, and the writes of live runs never touch it. The state list is
-- gateway.model.TERMINAL_STATES; the query repeats it (a parameter would not match).
CREATE INDEX runs_ended ON runs (namespace, created_at, updated_at, state)
    WHERE state IN ('CANCELED', 'FAILED', 'INTERNAL_ERROR', 'REJECTED', 'SKIPPED', 'SUCCEEDED',
                    'TIMED_OUT');
