"""Whom a plan makes Databricks see, named without a secret (``gateway.identity.principal``)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from gateway import logs
from gateway.identity import principal
from gateway.identity.principal import (
    client_subject,
    describe,
    mask_client_id,
    of_plan,
    same,
)
from gateway.identity.strategy import Plan, WorkspaceRef

WS = WorkspaceRef("prod", "https://prod.example")
OTHER_WS = WorkspaceRef("dev", "https://dev.example")
CLIENT = "0c2f6a7e-0000-4000-8000-00000000e7a1"
ORIGIN = "tenant policy"


@pytest.mark.parametrize(
    ("value", "masked"),
    [(CLIENT, "0c2f...e7a1"), (f"  {CLIENT}\n", "0c2f...e7a1"), ("sp-1", "****"), ("", "")],
)
def test_client_ids_are_masked_to_their_first_and_last_four(value: str, masked: str) -> None:
    """first 4 ... last 4, trimmed; an id too short to mask shows nothing of itself."""
    assert mask_client_id(value) == masked


def test_client_subjects_that_mask_alike_stay_apart() -> None:
    """Two ids with the same ends mask alike, but their subjects (cache keys) differ."""
    twin = CLIENT[:4] + "ffff" + CLIENT[8:]
    assert mask_client_id(twin) == mask_client_id(CLIENT)
    assert client_subject(twin) != client_subject(CLIENT)
    assert CLIENT not in client_subject(CLIENT)


PLANS = [
    Plan("oauth-m2m", WS, ORIGIN, client_id=CLIENT, inline_secret=SecretStr("dose-1")),
    Plan("pat", WS, ORIGIN, secret_name="databricks-token"),
    Plan("pat", WS, ORIGIN, inline_secret=SecretStr("dapi-1")),
    Plan("pat", WS, "gateway default identity", inline_secret=SecretStr("dapi-1"), shared=True),
    Plan("service-account-federation", WS, ORIGIN, service_account="etl", audience="a"),
    Plan("pod-token-federation", WS, ORIGIN, token_file="/var/run/t"),
    Plan("oauth-m2m", OTHER_WS, ORIGIN, client_id=CLIENT, inline_secret=SecretStr("dose-1")),
]


def test_every_plan_is_a_principal_of_its_own() -> None:
    """Another client id, Secret, account, source or host is another principal."""
    fingerprints = {of_plan(plan).fingerprint for plan in PLANS}
    assert len(fingerprints) == len(PLANS)


def test_a_rotated_secret_is_the_same_principal() -> None:
    """The secret value is no part of the principal: rotating it keeps following."""
    before = Plan("oauth-m2m", WS, ORIGIN, client_id=CLIENT, inline_secret=SecretStr("dose-1"))
    after = Plan("oauth-m2m", WS, ORIGIN, client_id=CLIENT, inline_secret=SecretStr("dose-2"))
    assert same(of_plan(before).record(), of_plan(after))


def test_the_service_principal_counts_not_where_its_secret_is_kept() -> None:
    """A client id given inline or beside a Secret holding its secret is one principal."""
    inline = Plan("oauth-m2m", WS, ORIGIN, client_id=CLIENT, inline_secret=SecretStr("s"))
    held = Plan("oauth-m2m", WS, ORIGIN, client_id=CLIENT, secret_name="sp")
    assert same(of_plan(inline).record(), of_plan(held))


def test_records_hold_no_secret_and_a_masked_client_id() -> None:
    """The ledger's record: names, a masked client id and a fingerprint, no secret value."""
    plan = Plan(
        "service-account-federation", WS, "ServiceAccount 'etl'", client_id=CLIENT,
        service_account="etl", audience="databricks",
    )  # fmt: skip
    record = of_plan(plan).record()
    assert record == {
        "kind": "service-account-federation",
        "host": WS.host,
        "client_id": "0c2f...e7a1",
        "service_account": "etl",
        "fingerprint": of_plan(plan).fingerprint,
    }
    inline = of_plan(Plan("pat", WS, ORIGIN, inline_secret=SecretStr("dapi-secret"))).record()
    assert "dapi-secret" not in repr(inline)
    assert CLIENT not in repr(record)


def test_a_run_recorded_without_a_principal_is_followed_as_before() -> None:
    """Runs accepted before principals were kept (an empty record) match any resolution."""
    assert same({}, of_plan(PLANS[0]))


def test_describe_names_what_to_restore() -> None:
    """The words a state message uses: kind, account or Secret, masked client id, host."""
    plan = Plan("service-account-federation", WS, ORIGIN, client_id=CLIENT, service_account="etl")
    assert describe(of_plan(plan).record()) == (
        "service-account-federation ServiceAccount 'etl' client id 0c2f...e7a1 at "
        "https://prod.example"
    )
    default = Plan("pat", WS, "default", inline_secret=SecretStr("x"), shared=True)
    assert describe(of_plan(default).record()) == (
        "pat given inline in the default identity at https://prod.example"
    )


def test_a_resolved_client_id_is_masked_in_every_log_line_from_then_on() -> None:
    """A Databricks error naming the service principal, logged after the plan resolved,
    shows it as records do (first 4 ... last 4)."""
    client = "7d1e9a52-0000-4000-8000-0000000051ce"
    principal.of_plan(Plan("oauth-m2m", WS, ORIGIN, client_id=f" {client} "))
    line = logs.redact_text(f"PERMISSION_DENIED: {client} is not allowed to view this run")
    assert client not in line
    assert "7d1e...51ce is not allowed" in line
