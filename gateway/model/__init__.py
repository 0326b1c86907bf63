"""The pure domain: run states, the run record, what Databricks says about a run, and delays.

Nothing here does I/O or imports anything of ours; every function is tested without a loop.
The state machine and the mapping from Databricks' states live here (``transition``,
``map_remote_status``), so the poller, the service and the store only apply what this package
decides. Import every name from ``gateway.model``; the submodules are its layout:

    states    RunState, the sets of states, the forward-only machine (transition, reconcile)
    records   RunRecord, its history entries, namespace usage, request and token identities
    remote    RemoteStatus and how Databricks' states map onto ours, and their message
    delays    next_poll_delay, submit_retry_delay, postpone_delay: pure, jitter passed in

What each terminal state promises a scheduler:

    SUCCEEDED       the run ended successfully (Databricks SUCCESS or SUCCESS_WITH_FAILURES)
    FAILED          the run, or its configuration, failed: the tenant's to fix
    TIMED_OUT       the run exceeded its timeout
    CANCELED        a user, the gateway or the platform canceled it
    SKIPPED         Databricks never executed it (disabled, excluded, a run or queue limit)
    INTERNAL_ERROR  the platform or the cloud failed, not the job; trying again may succeed
    REJECTED        Databricks, or the gateway before submitting, refused the run for good
"""

from gateway.model.delays import (
    POLL_AGE_FRACTION,
    POLL_JITTER_FRACTION,
    SUBMIT_BACKOFF_DOUBLINGS,
    SUBMIT_JITTER_FRACTION,
    next_poll_delay,
    postpone_delay,
    submit_retry_delay,
)
from gateway.model.records import (
    NamespaceUsage,
    RunRecord,
    Transition,
    databricks_idempotency_token,
    request_fingerprint,
)
from gateway.model.remote import (
    MAX_STATE_MESSAGE,
    RemoteStatus,
    map_remote_status,
    remote_state_message,
)
from gateway.model.states import (
    ACTIVE_STATES,
    REMOTE_ACTIVE_STATES,
    TERMINAL_STATES,
    IllegalTransition,
    RunState,
    can_transition,
    reconcile,
    transition,
)

__all__ = [
    "ACTIVE_STATES",
    "MAX_STATE_MESSAGE",
    "POLL_AGE_FRACTION",
    "POLL_JITTER_FRACTION",
    "REMOTE_ACTIVE_STATES",
    "SUBMIT_BACKOFF_DOUBLINGS",
    "SUBMIT_JITTER_FRACTION",
    "TERMINAL_STATES",
    "IllegalTransition",
    "NamespaceUsage",
    "RemoteStatus",
    "RunRecord",
    "RunState",
    "Transition",
    "can_transition",
    "databricks_idempotency_token",
    "map_remote_status",
    "next_poll_delay",
    "postpone_delay",
    "reconcile",
    "remote_state_message",
    "request_fingerprint",
    "submit_retry_delay",
    "transition",
]
