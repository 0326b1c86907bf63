-- Run-hours (quotas.run_hours_per_day): when each run began to hold an active slot (it became
-- SUBMITTING, at creation or on leaving the queue) and when it ended. Time spent QUEUED is
-- not run time: a queued run counts toward nothing in Databricks.
ALTER TABLE runs ADD COLUMN started_at INTEGER;
ALTER TABLE runs ADD COLUMN ended_at INTEGER;

-- Existing runs take their times from their history.
UPDATE runs SET started_at = (
    SELECT min(at) FROM run_transitions t WHERE t.run_id = runs.id AND t.to_state = 'SUBMITTING'
);
UPDATE runs SET ended_at = (
    SELECT max(at) FROM run_transitions t WHERE t.run_id = runs.id AND t.to_state IN
        ('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'CANCELED', 'SKIPPED', 'INTERNAL_ERROR', 'REJECTED')
) WHERE started_at IS NOT NULL;

-- From then on the history keeps them: every state change is one run_transitions row, so the
-- columns follow it without any writer of runs having to remember them.
CREATE TRIGGER runs_started AFTER INSERT ON run_transitions
WHEN NEW.to_state = 'SUBMITTING'
BEGIN
    UPDATE runs SET started_at = NEW.at WHERE id = NEW.run_id AND started_at IS NULL;
END;

CREATE TRIGGER runs_ended AFTER INSERT ON run_transitions
WHEN NEW.to_state IN
    ('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'CANCELED', 'SKIPPED', 'INTERNAL_ERROR', 'REJECTED')
BEGIN
    UPDATE runs SET ended_at = NEW.at WHERE id = NEW.run_id AND started_at IS NOT NULL;
END;

-- A namespace's runs that held a slot, by end (NULL: still active), covering the start: the
-- rolling day's run time is two range reads of this index and no table lookups.
CREATE INDEX runs_run_time ON runs (namespace, ended_at, started_at) WHERE started_at IS NOT NULL;
