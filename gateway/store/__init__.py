"""The durable run ledger: the Store protocol and its values. Backends live in submodules
(``gateway.store.sqlite``); only the composition root picks one."""

from gateway.store.base import (
    INITIAL_STATES,
    Admission,
    Admit,
    NewRun,
    OutboxEntry,
    Reschedule,
    Store,
)

__all__ = ["INITIAL_STATES", "Admission", "Admit", "NewRun", "OutboxEntry", "Reschedule", "Store"]
