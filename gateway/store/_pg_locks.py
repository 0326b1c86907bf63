"""The PostgreSQL ledger's advisory locks: one lock class per thing a quota decision spans.

``create_run`` and ``promote_queued`` take the same locks, in the same order (namespace before
workspace, always), so two admissions never deadlock and each sees what the other committed.
"""

from __future__ import annotations

# Advisory lock classes (the first key of pg_advisory_xact_lock(int, int)); the second key is
# the name's hash.
NAMESPACE_LOCK = 15_001
WORKSPACE_LOCK = 15_002
LOCK = "SELECT pg_advisory_xact_lock($1, hashtext($2))"
