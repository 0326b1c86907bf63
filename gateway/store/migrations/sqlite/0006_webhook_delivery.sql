-- Webhook delivery: leases on outbox rows, what the last attempt saw, and disabled endpoints.
-- A claimed row is leased until lease_until so a second dispatcher (or a second claim of the
-- same one) leaves it alone; a crashed dispatcher's lease simply runs out.
ALTER TABLE outbox ADD COLUMN lease_until INTEGER;
ALTER TABLE outbox ADD COLUMN last_status INTEGER;
ALTER TABLE outbox ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
-- Where the last attempt went (NULL: nowhere, the namespace has no endpoint for it).
ALTER TABLE outbox ADD COLUMN endpoint TEXT;
CREATE INDEX outbox_dead ON outbox (namespace, id) WHERE dead_at IS NOT NULL;

-- An endpoint that answered 410 Gone: nothing is sent to it until an operator re-enables it.
CREATE TABLE webhook_endpoints_disabled (
    namespace   TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    disabled_at INTEGER NOT NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (namespace, url)
) WITHOUT ROWID;
