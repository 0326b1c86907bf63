"""Each kind of tenant identity end to end: REST API -> resolver -> Kubernetes / token endpoints
-> Databricks, with the run attributed by the Databricks emulator to the namespace's own
principal (issue 4). Real sockets throughout: the fake Kubernetes API, the Databricks emulator
(also playing Entra ID) and the gateway on loopback ports.
"""

from __future__ import annotations

import pytest

from tests.fixtures.identity_stack import (
    AZURE_SECRET,
    AZURE_SECRET_APP,
    AZURE_SECRET_CLIENT_ID,
    AZURE_TENANT_ID,
    AZURE_WI_APP,
    AZURE_WI_CLIENT_ID,
    DEFAULT_SP,
    LAKEGATE_LABEL,
    POD_CLIENT_ID,
    POD_SP,
    SA_AUDIENCE,
    Flavour,
    IdentityStackFactory,
)


async def test_pat_secret_runs_as_its_user(identity_stack_factory: IdentityStackFactory) -> None:
    """A namespace's databricks-token Secret makes its runs those of the PAT's user."""
    stack = await identity_stack_factory()
    user = stack.pat_secret("team-pat")
    assert await stack.run_to_end("team-pat", "pat-run") == user.name


async def test_oauth_secret_runs_as_its_service_principal(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """A databricks-oauth Secret is traded at the token endpoint for its service principal."""
    stack = await identity_stack_factory()
    sp = stack.oauth_secret("team-oauth")
    assert await stack.run_to_end("team-oauth", "oauth-run") == sp.name
    grants = stack.identity_stats()["token_requests"]["by_grant_type"]
    assert grants == {"client_credentials": 1}


@pytest.mark.parametrize(
    ("flavour", "audience"),
    [("lakegate", SA_AUDIENCE), ("flyte", SA_AUDIENCE), ("lakegate", None)],
    ids=["lakegate-label", "flyte-label", "default-audience"],
)
async def test_labelled_service_account_federates_as_its_principal(
    identity_stack_factory: IdentityStackFactory, flavour: Flavour, audience: str | None
) -> None:
    """A labelled ServiceAccount's minted token is exchanged for the principal trusting it."""
    stack = await identity_stack_factory()
    # A Secret in the same namespace must lose to the labelled ServiceAccount (precedence).
    stack.pat_secret("team-fed")
    sp = stack.labelled_service_account("team-fed", "runner", flavour=flavour, audience=audience)
    await stack.synced()
    assert await stack.run_to_end("team-fed", "federated-run") == sp.name
    assert stack.kube.token_requests("team-fed", "runner") == 1
    assert stack.token_exchanges() == 1


async def test_request_chosen_service_account_runs_and_is_polled_as_it(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Each request naming one of two labelled ServiceAccounts runs (and is followed) as it."""
    stack = await identity_stack_factory()
    etl = stack.labelled_service_account("team-two", "etl")
    reports = stack.labelled_service_account("team-two", "reports", flavour="flyte")
    await stack.synced()
    chosen = {"service_account": "reports"}
    assert await stack.run_to_end("team-two", "as-reports", identity=chosen) == reports.name
    chosen = {"service_account": "etl"}
    assert await stack.run_to_end("team-two", "as-etl", identity=chosen) == etl.name


async def test_request_chosen_secret_runs_as_its_principal(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """A request naming another offered Secret of its namespace runs as its principal."""
    stack = await identity_stack_factory()
    own = stack.pat_secret("team-sec")
    other = stack.oauth_secret(
        "team-sec", secret="reporting-oauth", labels={LAKEGATE_LABEL: "true"}
    )
    assert await stack.run_to_end("team-sec", "own") == own.name
    chosen = {"secret": "reporting-oauth"}
    assert await stack.run_to_end("team-sec", "chosen", identity=chosen) == other.name


async def test_pod_token_federation_runs_as_the_trusting_principal(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """The gateway pod's projected token (minted by the cluster) is exchanged per policy."""
    stack = await identity_stack_factory(
        tenants={
            "team-pod": {"identity": {"type": "pod-token-federation", "client_id": POD_CLIENT_ID}}
        }
    )
    assert await stack.run_to_end("team-pod", "pod-run") == POD_SP
    assert stack.token_exchanges() == 1


async def test_azure_client_secret_from_a_secret_runs_as_the_entra_app(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """An Entra app's client secret, read from the namespace's Secret, logs in at Entra ID."""
    policy = {
        "type": "azure-client-secret",
        "tenant_id": AZURE_TENANT_ID,
        "client_id": AZURE_SECRET_CLIENT_ID,
        "secret": {"name": "azure-sp"},
    }
    stack = await identity_stack_factory(tenants={"team-az": {"identity": policy}})
    stack.kube.put_secret("team-az", "azure-sp", {"client_secret": AZURE_SECRET})
    assert await stack.run_to_end("team-az", "azure-secret-run") == AZURE_SECRET_APP
    entra = stack.identity_stats()["entra"]["token_requests"]
    assert entra["by_app"] == {AZURE_SECRET_APP: 1}


async def test_azure_workload_identity_runs_as_the_entra_app(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """A federated token file (minted by the cluster) is the Entra app's client assertion."""
    policy = {
        "type": "azure-workload-identity",
        "tenant_id": AZURE_TENANT_ID,
        "client_id": AZURE_WI_CLIENT_ID,
    }
    stack = await identity_stack_factory(tenants={"team-wi": {"identity": policy}})
    assert await stack.run_to_end("team-wi", "azure-wi-run") == AZURE_WI_APP
    entra = stack.identity_stats()["entra"]["token_requests"]
    assert entra["by_app"] == {AZURE_WI_APP: 1}


async def test_default_identity_serves_unconfigured_namespaces_when_opted_in(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """With default_for_unconfigured, bare namespaces run as the one DATABRICKS_* identity."""
    stack = await identity_stack_factory(
        default_identity=True, identity={"default_for_unconfigured": True}
    )
    assert await stack.run_to_end("team-bare", "default-run") == DEFAULT_SP
    assert await stack.run_to_end("team-bare-too", "default-run-too") == DEFAULT_SP
    # One identity, one cached token, whichever namespace borrows it.
    assert stack.identity_stats()["token_requests"]["total"] == 1


async def test_default_identity_is_refused_to_unconfigured_namespaces_by_default(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Without the opt-in a bare namespace is refused, though the gateway has an identity."""
    stack = await identity_stack_factory(default_identity=True)
    error = await stack.refused("team-bare")
    assert error.status == 403
    assert error.problem["namespace"] == "team-bare"
    assert "no Databricks identity" in (error.detail or "")
    assert stack.identity_stats()["token_requests"]["total"] == 0


async def test_policy_naming_the_default_identity_runs_as_it_without_the_opt_in(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """A tenant policy of type default is an explicit choice, honoured without the opt-in."""
    stack = await identity_stack_factory(
        default_identity=True, tenants={"team-dflt": {"identity": {"type": "default"}}}
    )
    assert await stack.run_to_end("team-dflt", "policy-default-run") == DEFAULT_SP
