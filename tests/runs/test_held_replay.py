"""A keyed submit whose identity the resolver holds: its replay is answered by the insert.

When the namespace's identity is held fresh, nothing the submit needs can be away, so the
ledger read that answers a replay before any identity is asked for is left out: the insert's
own idempotency check answers it, in the same ledger job. These tests pin what a caller sees
on that path: the same replay, the same Conflict, and a retry of an accepted run answered even
after a reloaded guardrail would refuse its spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.errors import Conflict, InvalidRequest, KubernetesError
from gateway.identity.resolver import IdentityOverride, ResolvedIdentity
from gateway.runs.types import SubmitRequest
from gateway.settings import Settings, TenantsSettings
from tests.fixtures.databricks_emulator import DatabricksEmulator
from tests.runs.conftest import SPEC, Identities, Wired

CLUSTER_SPEC: dict[str, Any] = {
    **SPEC,
    "tasks": [{**SPEC["tasks"][0], "new_cluster": {"num_workers": 8, "node_type_id": "m5.large"}}],
}


@dataclass
class HeldIdentities(Identities):
    """Identities that keep each resolution, as NamespaceResolver does, while ``holding``."""

    holding: bool = True
    held: dict[tuple[str, IdentityOverride | None], ResolvedIdentity] = field(default_factory=dict)

    async def resolve(
        self, namespace: str, override: IdentityOverride | None = None
    ) -> ResolvedIdentity:
        resolved = await super().resolve(namespace, override)
        self.held[(namespace, override)] = resolved
        return resolved

    def cached(
        self, namespace: str, override: IdentityOverride | None = None
    ) -> ResolvedIdentity | None:
        return self.held.get((namespace, override)) if self.holding else None


@pytest.fixture
def runs_identities(databricks_emulator: DatabricksEmulator) -> HeldIdentities:
    return HeldIdentities(databricks_emulator.url, databricks_emulator.pat)


@pytest.fixture
def key_reads(wired: Wired, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys the service looked up in the ledger with a read of their own."""
    reads: list[str] = []
    read = wired.store.get_run_by_idempotency_key

    async def counted(namespace: str, key: str) -> Any:
        reads.append(key)
        return await read(namespace, key)

    monkeypatch.setattr(wired.store, "get_run_by_idempotency_key", counted)
    return reads


def request(spec: dict[str, Any] = SPEC) -> SubmitRequest:
    return SubmitRequest(spec=spec)


async def test_a_held_identity_replay_takes_no_read_and_asks_no_one(
    wired: Wired, key_reads: list[str]
) -> None:
    """The retry gets the same run, not created, with no read of its own and no resolution,
    though Kubernetes is away; Databricks has one run."""
    first = await wired.service.submit("team-a", request(), idempotency_key="nightly")
    assert key_reads == ["nightly"]  # before the identity was held
    wired.identities.failures.append(KubernetesError("connection refused"))
    again = await wired.service.submit("team-a", request(), idempotency_key="nightly")
    assert (again.created, again.run.id) == (False, first.run.id)
    assert key_reads == ["nightly"]
    assert len(wired.identities.calls) == 1
    assert wired.identities.failures  # never asked
    assert wired.count("lakegate_submissions", outcome="replayed") == 1
    assert len(wired.emulator.runs()) == 1


async def test_an_identity_not_held_is_read_for_first(
    wired: Wired, runs_identities: HeldIdentities, key_reads: list[str]
) -> None:
    """Not held, the key is read before anything is resolved, and the replay answered by it."""
    first = await wired.service.submit("team-a", request(), idempotency_key="nightly")
    runs_identities.holding = False
    wired.identities.failures.append(KubernetesError("connection refused"))
    again = await wired.service.submit("team-a", request(), idempotency_key="nightly")
    assert (again.created, again.run.id) == (False, first.run.id)
    assert key_reads == ["nightly", "nightly"]
    assert wired.identities.failures


async def test_another_body_under_a_held_key_is_a_conflict(
    wired: Wired, key_reads: list[str]
) -> None:
    """A different request reusing the key is refused by the insert and creates nothing."""
    await wired.service.submit("team-a", request(), idempotency_key="once")
    key_reads.clear()
    other = request({**SPEC, "run_name": "something else"})
    with pytest.raises(Conflict, match="once"):
        await wired.service.submit("team-a", other, idempotency_key="once")
    assert key_reads == []
    assert len(wired.emulator.runs()) == 1


async def test_a_retry_outlives_a_guardrail_reloaded_since(
    wired: Wired, runs_settings: Settings, key_reads: list[str]
) -> None:
    """After the tenant's guardrails were reloaded to refuse the spec, its retry still gets
    the run it was accepted as, while the same spec under a new key is refused."""
    first = await wired.service.submit("team-a", request(CLUSTER_SPEC), idempotency_key="k")
    strict = TenantsSettings.model_validate(
        {"namespaces": {"team-a": {"guardrails": {"max_workers": 4}}}}
    )
    object.__setattr__(runs_settings, "tenants", strict)  # as settings/reload.py swaps them
    again = await wired.service.submit("team-a", request(CLUSTER_SPEC), idempotency_key="k")
    assert (again.created, again.run.id) == (False, first.run.id)
    with pytest.raises(InvalidRequest, match="max_workers"):
        await wired.service.submit("team-a", request(CLUSTER_SPEC), idempotency_key="new")
    # The first before its identity was held; the retry and the new key once refused.
    assert key_reads == ["k", "k", "new"]
    assert len(wired.emulator.runs()) == 1
