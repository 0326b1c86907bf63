"""The remote half: submitting, deferring, refusing and cancelling, against the emulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from gateway.errors import (
    CredentialUnavailable,
    IdentityForbidden,
    IdentityMisconfigured,
    KubernetesError,
    LakegateError,
    NotFound,
    RunIdentityGone,
    TokenEndpointError,
)
from gateway.identity.principal import Principal
from gateway.identity.resolver import IdentityOverride
from gateway.model import RunRecord, RunState
from gateway.runs.specs import RUN_COMPLETED
from tests.runs.conftest import Wired, new_run

S = RunState
# Fault rules match the path as sent; request statistics name it by its route.
SUBMIT = "/api/*/jobs/runs/submit"
SUBMIT_ROUTE = "/api/{version}/jobs/runs/submit"


async def submitting(wired: Wired, identity_ref: dict[str, str] | None = None) -> RunRecord:
    """A run the ledger accepted and nobody has sent to Databricks yet."""
    run, _ = await wired.ledger.accept(new_run(identity_ref=identity_ref))
    return run


def submits(wired: Wired) -> int:
    return sum(
        r["count"]
        for r in wired.emulator.stats()["requests"]
        if r["method"] == "POST" and r["path"] == SUBMIT_ROUTE
    )


async def test_a_submission_reaches_databricks_with_the_ledger_token(wired: Wired) -> None:
    """Databricks gets the run with a token made from the ledger id; the run is PENDING."""
    run = await submitting(wired)
    sent = await wired.submitter.submit_remote(run, deadline=5)
    assert sent.state is S.PENDING
    [remote] = wired.emulator.runs()
    assert remote["run_id"] == sent.databricks_run_id
    assert remote["idempotency_token"] == f"lakegate-{wired.store.installation_id}-{run.id}"
    assert wired.count("lakegate_submissions", outcome="submitted") == 1


async def test_submitting_a_run_again_creates_no_second_databricks_run(wired: Wired) -> None:
    """A retry of the same ledger run gets the same Databricks run and changes nothing."""
    run = await submitting(wired)
    first = await wired.submitter.submit_remote(run, deadline=5)
    again = await wired.submitter.submit_remote(run, deadline=5)
    assert len(wired.emulator.runs()) == 1
    assert again.databricks_run_id == first.databricks_run_id
    assert wired.count("lakegate_run_transitions", state="PENDING") == 1


# The poller's intervals are 5 s to 60 s (tests.runs.conftest.POLLER); no jitter.
@pytest.mark.parametrize(("attempts", "delay"), [(1, 5), (2, 10), (3, 20), (5, 60)])
async def test_a_deferred_submission_backs_off(wired: Wired, attempts: int, delay: int) -> None:
    """While Databricks fails, each attempt waits twice the last, up to the longest interval."""
    wired.emulator.fault(path=SUBMIT, status=503, probability=1)
    run = await submitting(wired)
    for _ in range(attempts):
        run = await wired.submitter.submit_remote(run, deadline=5)
    assert (run.state, run.attempts) == (S.SUBMITTING, attempts)
    assert run.next_poll_at is not None
    assert run.next_poll_at - wired.clock.utc() == timedelta(seconds=delay)
    assert run.state_message.startswith(f"waiting to submit (attempt {attempts}): ")
    assert wired.count("lakegate_submissions", outcome="deferred") == attempts


async def test_a_submission_that_times_out_is_deferred(wired: Wired) -> None:
    """Databricks not answering within the deadline defers the run, it does not fail it."""
    wired.emulator.fault(path=SUBMIT, action="hang", seconds=5)
    run = await wired.submitter.submit_remote(await submitting(wired), deadline=0.2)
    assert (run.state, run.attempts) == (S.SUBMITTING, 1)
    assert run.state_message == "waiting to submit (attempt 1): Databricks did not answer in time"


async def test_an_identity_outage_defers_the_submission(wired: Wired) -> None:
    """No identity for now (Kubernetes away) is an outage: the run waits, it is not refused."""
    wired.identities.failures.append(KubernetesError("connection refused"))
    run = await wired.submitter.submit_remote(await submitting(wired), deadline=5)
    assert (run.state, run.attempts) == (S.SUBMITTING, 1)
    assert submits(wired) == 0


async def test_a_permanent_refusal_ends_the_run_rejected(wired: Wired) -> None:
    """A 400 from runs/submit ends the run REJECTED at once, with its event, never retried."""
    wired.emulator.fault(
        path=SUBMIT, status=400, error_code="INVALID_PARAMETER_VALUE", message="no tasks"
    )
    run = await wired.submitter.submit_remote(await submitting(wired), deadline=5)
    assert run.state is S.REJECTED
    assert run.state_message.startswith("Databricks refused the run: ")
    assert "no tasks" in run.state_message
    assert [e["type"] for e in await wired.outbox(run)] == [RUN_COMPLETED]
    assert wired.count("lakegate_submissions", outcome="rejected") == 1
    assert submits(wired) == 1


async def test_giving_up_ends_the_run_as_an_internal_error(wired: Wired) -> None:
    """A submission never confirmed ends INTERNAL_ERROR with the reason, and its event."""
    run = await submitting(wired)
    ended = await wired.submitter.give_up_submitting(run, "not confirmed within 3600 s")
    assert ended is not None
    assert (ended.state, ended.state_message) == (S.INTERNAL_ERROR, "not confirmed within 3600 s")
    assert len(await wired.outbox(run)) == 1


async def test_a_run_is_followed_by_the_identity_it_chose(wired: Wired) -> None:
    """identity_of asks for the run's own ServiceAccount, marked as following a run."""
    run = await submitting(wired, {"service_account": "etl"})
    await wired.submitter.identity_of(run)
    assert wired.identities.calls == [
        ("team-a", IdentityOverride(service_account="etl", following=True))
    ]


async def test_a_run_whose_identity_is_gone_is_followed_by_no_other(wired: Wired) -> None:
    """When the chosen Secret is gone the run is not followed by the namespace's current
    identity: RunIdentityGone says what to restore, and the run is counted until it is back."""
    run = await submitting(wired, {"secret": "old-token"})
    wired.identities.refused.add("old-token")
    with capture_logs() as logs, pytest.raises(RunIdentityGone) as caught:
        await wired.submitter.identity_of(run)
    assert ("team-a", None) not in wired.identities.calls
    assert [e["event"] for e in logs] == ["run_identity_gone"]
    assert caught.value.run_id == run.id
    assert "Secret 'old-token'" in caught.value.message
    assert "recreate" in caught.value.message
    assert wired.metrics.registry.get_sample_value("lakegate_runs_identity_gone") == 1

    wired.identities.refused.discard("old-token")
    identity = await wired.submitter.identity_of(run)
    assert identity.namespace == "team-a"
    assert wired.metrics.registry.get_sample_value("lakegate_runs_identity_gone") == 0


ALICE = Principal("pat", "https://w", "secret/alice-token", secret="alice-token")
BOB = Principal(
    "oauth-m2m",
    "https://w",
    "client/0c2f6a7e-bob-00000000b0b0",
    client_id="0c2f6a7e-bob-00000000b0b0",
)


async def test_a_run_is_not_followed_by_another_principal_than_its_creator(
    wired: Wired,
) -> None:
    """When the namespace now resolves to another principal, identity_of refuses it with
    RunIdentityGone naming both (client id masked) and how to restore; the run is counted
    until its own principal is back."""
    run, _ = await wired.ledger.accept(new_run(principal=ALICE.record()))
    wired.identities.principal = BOB
    with capture_logs() as logs, pytest.raises(RunIdentityGone) as caught:
        await wired.submitter.identity_of(run)
    assert [e["event"] for e in logs] == ["run_principal_changed"]
    message = caught.value.message
    assert "created as pat Secret 'alice-token'" in message
    assert "now resolves to oauth-m2m client id 0c2f...b0b0" in message
    assert BOB.client_id not in message
    assert wired.metrics.registry.get_sample_value("lakegate_runs_identity_gone") == 1

    wired.identities.principal = ALICE
    assert (await wired.submitter.identity_of(run)).namespace == "team-a"
    assert wired.metrics.registry.get_sample_value("lakegate_runs_identity_gone") == 0


async def test_a_run_of_another_principal_is_not_cancelled_as_the_current_one(
    wired: Wired,
) -> None:
    """cancel_remote of a run created as another principal asks Databricks nothing."""
    sent = await wired.submitter.submit_remote(
        (await wired.ledger.accept(new_run(principal=ALICE.record())))[0], deadline=5
    )
    wired.identities.principal = BOB
    await wired.submitter.cancel_remote(sent)
    [remote] = wired.emulator.runs()
    assert remote["life_cycle_state"] != "TERMINATING"


async def test_a_run_whose_identity_is_gone_is_not_cancelled_by_another(wired: Wired) -> None:
    """Cancelling a run whose ServiceAccount is gone asks Databricks nothing, as nobody else."""
    sent = await wired.submitter.submit_remote(
        await submitting(wired, {"service_account": "etl"}), deadline=5
    )
    wired.identities.refused.add("etl")
    calls = len(wired.identities.calls)
    await wired.submitter.cancel_remote(sent)
    assert wired.identities.calls[calls:] == [
        ("team-a", IdentityOverride(service_account="etl", following=True))
    ]
    [remote] = wired.emulator.runs()
    assert remote["life_cycle_state"] != "TERMINATING"


async def test_cancel_asks_databricks_to_stop_the_run(wired: Wired) -> None:
    """cancel_remote cancels the run at Databricks with the run's identity."""
    sent = await wired.submitter.submit_remote(await submitting(wired), deadline=5)
    await wired.submitter.cancel_remote(sent)
    [remote] = wired.emulator.runs()
    assert remote["life_cycle_state"] in ("TERMINATING", "TERMINATED")


async def test_a_failed_cancel_is_left_for_the_next_poll(wired: Wired) -> None:
    """Databricks failing a cancel is logged as deferred, not raised to the caller."""
    sent = await wired.submitter.submit_remote(await submitting(wired), deadline=5)
    wired.emulator.fault(path="/api/*/jobs/runs/cancel", status=503, probability=1)
    with capture_logs() as logs:
        await wired.submitter.cancel_remote(sent)
    assert [e["event"] for e in logs if e["event"] == "cancel_deferred"] == ["cancel_deferred"]
    assert wired.emulator.runs()[0]["life_cycle_state"] == "PENDING"


async def test_a_run_not_at_databricks_has_no_remote_answer(wired: Wired) -> None:
    """remote_run of a run Databricks never got is NotFound, without asking Databricks."""
    with pytest.raises(NotFound, match="has not reached Databricks"):
        await wired.submitter.remote_run(await submitting(wired))
    assert wired.emulator.stats()["requests"] == []


MISCONFIGURED = [
    IdentityMisconfigured("secret 'creds' has no key 'token'", namespace="team-a"),
    IdentityForbidden("lakegate may not read Secret 'creds' (RBAC)", namespace="team-a"),
    TokenEndpointError("invalid_client", namespace="team-a", http_status=401),
]
OUTAGES = [
    CredentialUnavailable("cannot list ServiceAccounts", namespace="team-a"),
    TokenEndpointError("503", namespace="team-a", http_status=503, transient=True),
]


@pytest.mark.parametrize("refusal", MISCONFIGURED, ids=lambda e: type(e).__name__)
async def test_a_misconfigured_identity_rejects_the_run_at_once(
    wired: Wired, refusal: LakegateError
) -> None:
    """A namespace identity wrongly set up ends the run REJECTED at the first try, saying
    why; it is not left SUBMITTING to be retried (and to ask the token endpoint) for an hour."""
    assert 400 <= refusal.status < 500
    wired.identities.failures.append(refusal)
    run = await wired.submitter.submit_remote(await submitting(wired), deadline=5)
    assert run.state is S.REJECTED
    assert refusal.message in run.state_message
    assert run.next_poll_at is None
    assert submits(wired) == 0


@pytest.mark.parametrize("outage", OUTAGES, ids=lambda e: type(e).__name__)
async def test_an_identity_outage_is_retried(wired: Wired, outage: LakegateError) -> None:
    """What may heal (Kubernetes or the token endpoint away) defers the run: 5xx, SUBMITTING."""
    assert outage.status >= 500
    wired.identities.failures.append(outage)
    run = await wired.submitter.submit_remote(await submitting(wired), deadline=5)
    assert (run.state, run.attempts) == (S.SUBMITTING, 1)
