-- Whom Databricks saw create the run (kind, host, a masked client id or the Secret or
-- ServiceAccount it came from, and a digest of the exact identity): the poller follows and
-- cancels the run only as that principal. Names and a digest only, never a secret. '{}' for
-- runs accepted before this column, which are followed as they always were.
ALTER TABLE runs ADD COLUMN principal TEXT NOT NULL DEFAULT '{}';
