-- The run ledger: runs, their history, and the webhook outbox.
-- Times are integer microseconds since the Unix epoch, UTC: exact, and ordered as numbers.
-- There is deliberately no column for a token or any other credential.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Made once per ledger; part of every Databricks idempotency token (32 hex characters keep
-- the token within Databricks' 64).
INSERT INTO meta (key, value) VALUES ('installation_id', lower(hex(randomblob(16))));

-- AUTOINCREMENT so an id is never reused, even after rows are deleted: a reused id would
-- reuse an idempotency token and make Databricks return another run.
CREATE TABLE runs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace           TEXT    NOT NULL,
    state               TEXT    NOT NULL,
    spec                TEXT    NOT NULL,
    request_fingerprint TEXT    NOT NULL,
    workspace           TEXT    NOT NULL,
    idempotency_key     TEXT,
    databricks_host     TEXT,
    databricks_run_id   INTEGER,
    run_page_url        TEXT,
    state_message       TEXT    NOT NULL DEFAULT '',
    callback_url        TEXT,
    labels              TEXT    NOT NULL DEFAULT '{}',
    next_poll_at        INTEGER,
    attempts            INTEGER NOT NULL DEFAULT 0,
    cancel_requested    INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

CREATE UNIQUE INDEX runs_idempotency ON runs (namespace, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_namespace_id ON runs (namespace, id);
CREATE INDEX runs_namespace_state ON runs (namespace, state);
-- Ended runs have no next_poll_at, so the poller's index holds only live work.
CREATE INDEX runs_due ON runs (next_poll_at) WHERE next_poll_at IS NOT NULL;

CREATE TABLE run_transitions (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    from_state TEXT,
    to_state   TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    message    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX run_transitions_run ON run_transitions (run_id, id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          INTEGER NOT NULL REFERENCES runs (id),
    namespace       TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    delivered_at    INTEGER,
    dead_at         INTEGER
);
CREATE INDEX outbox_run ON outbox (run_id, id);
CREATE INDEX outbox_pending ON outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
