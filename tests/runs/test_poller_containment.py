"""One group's failure stays its own: a crash or a hang in one namespace's poll neither
cancels nor holds up the others' (issue 9)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import pytest

from gateway.identity.resolver import ResolvedIdentity
from gateway.model import RunRecord, RunState
from gateway.runs.poller import Poller
from tests.runs.conftest import POLLER, Wired

POISONED = "team-poisoned"
HEALTHY = ("team-a", "team-b", "team-c")


@dataclass
class OneBadNamespace:
    """The real submitter, except that following ``bad``'s runs raises or hangs."""

    wired: Wired
    bad: str
    failure: str
    asked: list[str] = field(default_factory=list)

    async def identity_of(self, run: RunRecord) -> ResolvedIdentity:
        self.asked.append(run.namespace)
        if run.namespace == self.bad:
            if self.failure == "hang":
                await asyncio.Event().wait()
            # A foreign exception, as aiohttp's ValueError once escaped the Jobs client.
            raise ValueError("Newline or carriage return character detected in HTTP header")
        return await self.wired.submitter.identity_of(run)

    async def submit_remote(
        self, run: RunRecord, identity: ResolvedIdentity | None = None, *, deadline: float
    ) -> RunRecord:
        return await self.wired.submitter.submit_remote(run, identity, deadline=deadline)

    async def cancel_remote(self, run: RunRecord) -> None:
        await self.wired.submitter.cancel_remote(run)

    async def give_up_submitting(self, run: RunRecord, reason: str) -> RunRecord | None:
        return await self.wired.submitter.give_up_submitting(run, reason)


@pytest.mark.parametrize("failure", ["crash", "hang"])
async def test_one_groups_failure_leaves_the_other_groups_polled(
    wired: Wired, failure: str
) -> None:
    """Every healthy namespace's runs are followed in the same tick, within the deadline,
    and the failing group's runs are postponed with the reason."""
    submitter = OneBadNamespace(wired, POISONED, failure)
    poller = Poller(
        store=wired.store,
        ledger=wired.ledger,
        jobs=wired.jobs,
        submitter=submitter,
        settings=POLLER,
        metrics=wired.metrics,
        clock=wired.clock.utc,
        rng=random.Random(7),
        group_deadline=0.5,
    )
    bad = await wired.submit(POISONED)
    good = [await wired.submit(namespace) for namespace in HEALTHY]
    wired.clock.advance(15)  # the emulator's runs are RUNNING by now
    async with asyncio.timeout(5):
        assert await poller.tick() == 1 + len(HEALTHY)
    for run in good:
        followed = await wired.ledger.current(run)
        assert followed.state is not RunState.SUBMITTING
        assert followed.next_poll_at is not None
        assert followed.next_poll_at > wired.clock.utc()
    waiting = await wired.ledger.current(bad)
    assert waiting.next_poll_at is not None
    assert waiting.next_poll_at > wired.clock.utc()
    assert waiting.state_message is not None
    assert waiting.state_message.startswith("polling ")
    assert sorted(set(submitter.asked)) == sorted({POISONED, *HEALTHY})
