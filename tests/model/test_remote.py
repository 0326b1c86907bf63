"""What Databricks reports about a run, in our states and words: pure, no event loop."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.model import (
    MAX_STATE_MESSAGE,
    RemoteStatus,
    RunState,
    map_remote_status,
    remote_state_message,
)

S = RunState


@pytest.mark.parametrize(
    ("life_cycle", "expected"),
    [
        ("QUEUED", S.PENDING),
        ("PENDING", S.PENDING),
        ("BLOCKED", S.PENDING),
        ("WAITING_FOR_RETRY", S.PENDING),
        ("RUNNING", S.RUNNING),
        ("TERMINATING", S.TERMINATING),
        ("SKIPPED", S.SKIPPED),
        ("INTERNAL_ERROR", S.INTERNAL_ERROR),
        ("running", S.RUNNING),
    ],
)
def test_legacy_life_cycle_states(life_cycle: str, expected: RunState) -> None:
    """Each legacy life cycle maps on its own; Databricks' queue is our PENDING."""
    assert map_remote_status(RemoteStatus(life_cycle)) == expected


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("SUCCESS", S.SUCCEEDED),
        ("SUCCESS_WITH_FAILURES", S.SUCCEEDED),
        ("FAILED", S.FAILED),
        ("UPSTREAM_FAILED", S.FAILED),
        ("TIMEDOUT", S.TIMED_OUT),
        ("CANCELED", S.CANCELED),
        ("UPSTREAM_CANCELED", S.CANCELED),
        ("EXCLUDED", S.SKIPPED),
        ("DISABLED", S.SKIPPED),
        ("MAXIMUM_CONCURRENT_RUNS_REACHED", S.SKIPPED),
        (None, S.FAILED),
        ("SOME_FUTURE_RESULT", S.FAILED),
    ],
)
def test_terminated_result_states(result: str | None, expected: RunState) -> None:
    """TERMINATED takes its outcome from result_state; a missing or new one is not a success."""
    assert map_remote_status(RemoteStatus("TERMINATED", result)) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("SUCCESS", S.SUCCEEDED),
        ("SUCCESS_WITH_FAILURES", S.SUCCEEDED),
        ("USER_CANCELED", S.CANCELED),
        ("CANCELED", S.CANCELED),
        ("SKIPPED", S.SKIPPED),
        ("DISABLED", S.SKIPPED),
        ("WORKSPACE_RUN_LIMIT_EXCEEDED", S.SKIPPED),
        ("MAX_CONCURRENT_RUNS_EXCEEDED", S.SKIPPED),
        ("MAX_JOB_QUEUE_SIZE_EXCEEDED", S.SKIPPED),
        ("INTERNAL_ERROR", S.INTERNAL_ERROR),
        ("DRIVER_ERROR", S.INTERNAL_ERROR),
        ("CLUSTER_ERROR", S.INTERNAL_ERROR),
        ("CLOUD_FAILURE", S.INTERNAL_ERROR),
        ("CLUSTER_REQUEST_LIMIT_EXCEEDED", S.INTERNAL_ERROR),
        ("MAX_SPARK_CONTEXTS_EXCEEDED", S.INTERNAL_ERROR),
        ("RUN_EXECUTION_ERROR", S.FAILED),
        ("REPOSITORY_CHECKOUT_FAILED", S.FAILED),
        ("INVALID_CLUSTER_REQUEST", S.FAILED),
        ("FEATURE_DISABLED", S.FAILED),
        ("STORAGE_ACCESS_ERROR", S.FAILED),
        ("UNAUTHORIZED_ERROR", S.FAILED),
        ("LIBRARY_INSTALLATION_ERROR", S.FAILED),
        ("RESOURCE_NOT_FOUND", S.FAILED),
        ("INVALID_RUN_CONFIGURATION", S.FAILED),
        ("BREAKING_CHANGE", S.FAILED),
        ("BUDGET_POLICY_LIMIT_EXCEEDED", S.FAILED),
        ("CLUSTER_TERMINATED_BY_USER", S.FAILED),
        ("A_CODE_FROM_2030", S.FAILED),
        (None, S.FAILED),
    ],
)
def test_status_only_termination_codes(code: str | None, expected: RunState) -> None:
    """With only the newer status, a TERMINATED run's outcome comes from its termination code."""
    remote = RemoteStatus(status_state="TERMINATED", termination_code=code)
    assert map_remote_status(remote) == expected


@pytest.mark.parametrize(
    ("ttype", "expected"),
    [
        ("SUCCESS", S.SUCCEEDED),
        ("CLIENT_ERROR", S.FAILED),
        ("INTERNAL_ERROR", S.INTERNAL_ERROR),
        ("CLOUD_FAILURE", S.INTERNAL_ERROR),
        ("NEW_TYPE", S.FAILED),
    ],
)
def test_unknown_codes_fall_back_to_termination_type(ttype: str, expected: RunState) -> None:
    """A termination code newer than our table is classified by its termination type."""
    remote = RemoteStatus(
        status_state="TERMINATED", termination_code="NEW_CODE", termination_type=ttype
    )
    assert map_remote_status(remote) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("QUEUED", S.PENDING),
        ("PENDING", S.PENDING),
        ("BLOCKED", S.PENDING),
        ("WAITING", S.PENDING),
        ("RUNNING", S.RUNNING),
        ("TERMINATING", S.TERMINATING),
    ],
)
def test_status_only_active_states(status: str, expected: RunState) -> None:
    """With only the newer status, active states map like their legacy namesakes."""
    assert map_remote_status(RemoteStatus(status_state=status)) == expected


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        # Emulator outcome table, reference §1.4: both shapes together.
        (RemoteStatus("TERMINATED", "SUCCESS", "", False, "TERMINATED", "SUCCESS", "SUCCESS"),
         S.SUCCEEDED),
        (RemoteStatus("TERMINATED", "FAILED", "", False, "TERMINATED", "RUN_EXECUTION_ERROR",
                      "CLIENT_ERROR"), S.FAILED),
        (RemoteStatus("TERMINATED", "CANCELED", "", True, "TERMINATED", "USER_CANCELED",
                      "CLIENT_ERROR"), S.CANCELED),
        (RemoteStatus("TERMINATED", "TIMEDOUT", "", True, "TERMINATED", "CANCELED",
                      "CLIENT_ERROR"), S.TIMED_OUT),
        (RemoteStatus("INTERNAL_ERROR", "FAILED", "", False, "TERMINATED", "CLUSTER_ERROR",
                      "CLOUD_FAILURE"), S.INTERNAL_ERROR),
        (RemoteStatus("INTERNAL_ERROR", "FAILED", "", False, "TERMINATED",
                      "REPOSITORY_CHECKOUT_FAILED", "CLIENT_ERROR"), S.FAILED),
        (RemoteStatus("SKIPPED", None, "", False, "TERMINATED", "WORKSPACE_RUN_LIMIT_EXCEEDED"),
         S.SKIPPED),
        # A failed result caused by the platform is the platform's fault.
        (RemoteStatus("TERMINATED", "FAILED", termination_code="DRIVER_ERROR"),
         S.INTERNAL_ERROR),
        # Details never turn a failure into a success or a cancel.
        (RemoteStatus("TERMINATED", "FAILED", termination_code="SUCCESS"), S.FAILED),
        (RemoteStatus("INTERNAL_ERROR", termination_code="USER_CANCELED"), S.INTERNAL_ERROR),
        # No result, but details: trust them.
        (RemoteStatus("TERMINATED", termination_code="USER_CANCELED"), S.CANCELED),
        # The legacy state decides while it is one we know.
        (RemoteStatus("RUNNING", status_state="TERMINATED", termination_code="SUCCESS"),
         S.RUNNING),
        # An unknown legacy life cycle defers to status, then to any result.
        (RemoteStatus("HIBERNATING", status_state="RUNNING"), S.RUNNING),
        (RemoteStatus("HIBERNATING", "SUCCESS"), S.SUCCEEDED),
        (RemoteStatus("HIBERNATING", status_state="DREAMING", termination_code="CANCELED"),
         S.CANCELED),
        (RemoteStatus("HIBERNATING"), S.PENDING),
        (RemoteStatus(), S.PENDING),
    ],
)  # fmt: skip
def test_combined_shapes(remote: RemoteStatus, expected: RunState) -> None:
    """Legacy state and newer status together resolve as the module docstring describes."""
    assert map_remote_status(remote) == expected


maybe_text = st.one_of(st.none(), st.text(max_size=40))
known = st.sampled_from(
    ["QUEUED", "PENDING", "RUNNING", "TERMINATING", "TERMINATED", "SKIPPED", "INTERNAL_ERROR",
     "SUCCESS", "FAILED", "CANCELED", "USER_CANCELED", "WAITING", "CLIENT_ERROR"]
)  # fmt: skip
remote_statuses = st.builds(
    RemoteStatus,
    life_cycle_state=st.one_of(known, st.text(max_size=40)),
    result_state=st.one_of(known, maybe_text),
    state_message=st.text(max_size=3000),
    user_cancelled_or_timedout=st.booleans(),
    status_state=st.one_of(known, maybe_text),
    termination_code=st.one_of(known, maybe_text),
    termination_type=st.one_of(known, maybe_text),
    termination_message=maybe_text,
)


@given(remote_statuses)
def test_mapping_is_total_and_never_invents_our_own_states(remote: RemoteStatus) -> None:
    """Any strings map to a state Databricks can report: never QUEUED, SUBMITTING or REJECTED."""
    assert map_remote_status(remote) in set(RunState) - {S.QUEUED, S.SUBMITTING, S.REJECTED}


@given(remote_statuses)
def test_message_is_one_bounded_line(remote: RemoteStatus) -> None:
    """Any status yields a message of one line within MAX_STATE_MESSAGE characters."""
    message = remote_state_message(remote)
    assert len(message) <= MAX_STATE_MESSAGE
    assert "\n" not in message


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        (RemoteStatus("TERMINATED", "SUCCESS", "   "), ""),
        (RemoteStatus("RUNNING", state_message="In run"), "In run"),
        (RemoteStatus("QUEUED", state_message="Waiting\nfor slots"), "QUEUED: Waiting for slots"),
        (RemoteStatus(status_state="BLOCKED"), "BLOCKED"),
        (RemoteStatus("TERMINATED", "SUCCESS_WITH_FAILURES", "1 task failed"),
         "SUCCESS_WITH_FAILURES: 1 task failed"),
        (RemoteStatus("TERMINATED", "FAILED", "legacy text", termination_code="RUN_EXECUTION_ERROR",
                      termination_message="Task main failed"),
         "RUN_EXECUTION_ERROR: Task main failed"),
        (RemoteStatus("TERMINATED", "FAILED", "boom"), "boom"),
    ],
)  # fmt: skip
def test_state_message_leads_with_the_telling_code(remote: RemoteStatus, expected: str) -> None:
    """The message names the Databricks code our state hides, then Databricks' own words."""
    assert remote_state_message(remote) == expected


def test_long_messages_are_cut_with_an_ellipsis() -> None:
    """A stack-trace-sized message is cut to MAX_STATE_MESSAGE characters ending in an ellipsis."""
    message = remote_state_message(RemoteStatus("TERMINATED", "FAILED", "x" * 10_000))
    assert len(message) == MAX_STATE_MESSAGE
    assert message.endswith("\u2026")
