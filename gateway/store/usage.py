"""What admission reads of a namespace's usage, and the callbacks that decide from it.

``create_run`` and ``promote_queued`` read the namespace's usage inside their write
transaction and hand it to a pure callback (``Admit``, ``Fits``); ``UsageNeeds`` says which
figures that callback looks at, so a store reads no more than those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.model import NamespaceUsage, RunState


# Called inside create_run's write transaction with the namespace's usage at that instant; it
# returns the initial state (QUEUED or SUBMITTING), or an Admission that also gives the first
# history entry's message (why the run waits), or raises (e.g. QuotaExceeded) to refuse, or
# UsageWanted to be called again with what its UsageNeeds left out. It must be quick and must
# not await: the ledger is locked while it runs. A backend may call it on its own thread
# (SQLite does), so it must not touch the event loop, and any state it shares with other code
# needs a threading lock.
@dataclass(frozen=True, slots=True)
class Admission:
    """Admission's choice: the initial state, and the message its history entry records."""

    state: RunState
    message: str


Admit = Callable[[NamespaceUsage], "RunState | Admission"]


@dataclass(frozen=True, slots=True)
class RateRule:
    """A token bucket of ``burst`` tokens refilled at ``per_minute``: the rate limit the store
    checks itself when ``UsageNeeds.rate`` names it (``admission.rate_wait`` says how)."""

    per_minute: float
    burst: int


class UsageWanted(Exception):
    """Raised by an ``admit`` callback that needs the mean run time ``needs`` left out: the
    store reads it in the same transaction and calls the callback again with it."""


@dataclass(frozen=True, slots=True)
class UsageNeeds:
    """Which of the namespace's usage an ``admit`` callback looks at, so the rest is not read.

    ``run_hours``: the rolling day's run time (``NamespaceUsage.run_seconds``), a sum over the
    runs that held a slot in the last 24 h, which only a namespace with a ``run_hours_per_day``
    budget needs. Not read, it is 0.0. ``mean_run``: False leaves ``mean_run_seconds`` out
    (``mean_run_read`` False) until the callback raises ``UsageWanted``. ``rate``: the store
    evaluates that bucket over the rate window (``rate_wait_seconds``, ``rate_last_minute``)
    instead of handing over ``recent_submissions`` (then empty); ``recent`` False, with no
    ``rate``, reads no rate window at all (a promotion's ``Fits`` never looks at it).
    ``workspace_active``: False for a workspace without a cap (the count is 0 then). The
    namespace's counts are always read.
    """

    run_hours: bool = True
    mean_run: bool = True
    rate: RateRule | None = None
    recent: bool = True
    workspace_active: bool = True


# What an admission reads when it does not say: everything.
EVERY_USAGE = UsageNeeds()

__all__ = [
    "EVERY_USAGE",
    "Admission",
    "Admit",
    "RateRule",
    "UsageNeeds",
    "UsageWanted",
]
