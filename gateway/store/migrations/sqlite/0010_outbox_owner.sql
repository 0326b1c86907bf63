-- Who claimed an outbox row last, as on PostgreSQL: a settlement or a renewal from a dispatcher
-- whose claim another one took over (its lease ran out mid-delivery) is refused, so it cannot
-- clear or overwrite the new holder's lease and attempt. Kept after the row is settled.
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
