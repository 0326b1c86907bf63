-- The run ledger on PostgreSQL: the schema SQLite reaches with its migrations 0001-0008, as one
-- baseline. Times are timestamptz (UTC out), JSON is jsonb, ids are identities: a sequence
-- never hands an id out twice, even after a rollback, so an idempotency token is never reused.
-- There is deliberately no column for a token or any other credential.

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- Made once per ledger, by whichever replica migrates first; part of every Databricks
-- idempotency token (32 hex characters keep the token within Databricks' 64).
INSERT INTO meta (key, value) VALUES ('installation_id', replace(gen_random_uuid()::text, '-', ''));

CREATE TABLE runs (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace           text        NOT NULL,
    state               text        NOT NULL,
    spec                jsonb       NOT NULL,
    request_fingerprint text        NOT NULL,
    workspace           text        NOT NULL,
    idempotency_key     text,
    databricks_host     text,
    databricks_run_id   bigint,
    run_page_url        text,
    state_message       text        NOT NULL DEFAULT '',
    callback_url        text,
    labels              jsonb       NOT NULL DEFAULT '{}',
    next_poll_at        timestamptz,
    attempts            integer     NOT NULL DEFAULT 0,
    cancel_requested    boolean     NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    -- The ServiceAccount or Secret a request chose ({} for none): names only.
    identity_ref        jsonb       NOT NULL DEFAULT '{}',
    -- Whom Databricks saw create the run: names and a digest only, never a secret.
    principal           jsonb       NOT NULL DEFAULT '{}',
    -- When the run began to hold an active slot, and when it ended (run-hours).
    started_at          timestamptz,
    ended_at            timestamptz
);

-- Two first requests with one key race to this index: one insert wins, the other is a replay.
CREATE UNIQUE INDEX runs_idempotency ON runs (namespace, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_namespace_id ON runs (namespace, id);
CREATE INDEX runs_namespace_state ON runs (namespace, state);
CREATE INDEX runs_due ON runs (next_poll_at) WHERE next_poll_at IS NOT NULL;
CREATE INDEX runs_namespace_remote ON runs (namespace, databricks_run_id)
    WHERE databricks_run_id IS NOT NULL;
CREATE INDEX runs_group_active ON runs (namespace, identity_ref)
    WHERE state IN ('PENDING', 'RUNNING', 'TERMINATING') AND databricks_run_id IS NOT NULL;
CREATE INDEX runs_namespace_created ON runs (namespace, created_at);
CREATE INDEX runs_queued ON runs (namespace, id) WHERE state = 'QUEUED';
CREATE INDEX runs_workspace_state ON runs (workspace, state);
CREATE INDEX runs_run_time ON runs (namespace, ended_at, started_at) WHERE started_at IS NOT NULL;

CREATE TABLE run_transitions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     bigint      NOT NULL REFERENCES runs (id),
    from_state text,
    to_state   text        NOT NULL,
    at         timestamptz NOT NULL,
    message    text        NOT NULL DEFAULT ''
);
CREATE INDEX run_transitions_run ON run_transitions (run_id, id);

-- The history keeps started_at and ended_at: every state change is one run_transitions row,
-- so the columns follow it without any writer of runs having to remember them.
CREATE FUNCTION runs_follow_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.to_state = 'SUBMITTING' THEN
        UPDATE runs SET started_at = NEW.at WHERE id = NEW.run_id AND started_at IS NULL;
    ELSIF NEW.to_state IN
        ('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'CANCELED', 'SKIPPED', 'INTERNAL_ERROR', 'REJECTED')
    THEN
        UPDATE runs SET ended_at = NEW.at WHERE id = NEW.run_id AND started_at IS NOT NULL;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER runs_follow_history AFTER INSERT ON run_transitions
    FOR EACH ROW EXECUTE FUNCTION runs_follow_history();

CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          bigint      NOT NULL REFERENCES runs (id),
    namespace       text        NOT NULL,
    event_type      text        NOT NULL,
    payload         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    delivered_at    timestamptz,
    dead_at         timestamptz,
    -- A claim: which store instance holds the row, and until when. Another replica leaves a
    -- leased row alone; a crashed replica's lease simply runs out.
    lease_owner     text,
    lease_until     timestamptz,
    last_status     integer,
    last_error      text        NOT NULL DEFAULT '',
    endpoint        text
);
CREATE INDEX outbox_run ON outbox (run_id, id);
CREATE INDEX outbox_pending ON outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_dead ON outbox (namespace, id) WHERE dead_at IS NOT NULL;

CREATE TABLE webhook_endpoints_disabled (
    namespace   text        NOT NULL,
    url         text        NOT NULL,
    disabled_at timestamptz NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    PRIMARY KEY (namespace, url)
);
