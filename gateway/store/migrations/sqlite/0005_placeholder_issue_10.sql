-- Placeholder on the webhooks branch only: version 5 belongs to issue 10 (quotas), whose
-- migration replaces this file when the branches are merged. Migrations are numbered without
-- gaps, so 0006 needs a 0005 to stand on. Intentionally empty.
SELECT 1;
