-- The ServiceAccount or Secret a request chose in its own namespace ({} when it chose none),
-- so the poller follows the run with the identity it was submitted under. Names only.
ALTER TABLE runs ADD COLUMN identity_ref TEXT NOT NULL DEFAULT '{}';
