-- Leases on runs (SQLite's migration 0009), so replicas share the background work by claiming
-- it: the poller's due runs, the submission retrier's SUBMITTING runs, the admission queue's
-- heads. lease_owner is the replica that claimed the run last; it stays after the claim is
-- released, so a write from a replica whose claim was taken over is refused (the fence).
-- lease_until is when the claim runs out; NULL or past: anyone may claim the run.
ALTER TABLE runs ADD COLUMN lease_owner text;
ALTER TABLE runs ADD COLUMN lease_until timestamptz;

-- What a replica holds, for renewing and releasing its claims and for finding a dead one's.
CREATE INDEX runs_leased ON runs (lease_owner, lease_until) WHERE lease_until IS NOT NULL;
