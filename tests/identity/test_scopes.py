"""OAuth scopes per identity (default all-apis), as the workspace's token endpoint receives
them: counted by the emulator per grant, end to end through the API."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from gateway.emulator.databricks.identity_config import PrincipalsUpdate
from gateway.settings import IdentityOptions, OAuthM2MIdentity, PodTokenFederation
from tests.fixtures.identity_stack import POD_CLIENT_ID, POD_SP, IdentityStackFactory


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("scopes", "options", "sent"),
    [
        (None, {}, "all-apis"),
        (["sql", "offline_access"], {}, "sql offline_access"),
        (None, {"oauth_scopes": ["jobs", "offline_access"]}, "jobs offline_access"),
    ],
    ids=["default", "the-identitys", "the-gateways-default"],
)
async def test_client_credentials_ask_for_the_identitys_scopes(
    identity_stack_factory: IdentityStackFactory,
    scopes: list[str] | None,
    options: dict[str, Any],
    sent: str,
) -> None:
    """The scope the workspace's token endpoint receives for an OAuth M2M run: the identity's
    own, else identity.oauth_scopes, else all-apis; one grant for two runs."""
    client_id, secret = str(uuid.uuid4()), "dose" + secrets.token_hex(16)
    policy: dict[str, Any] = {"type": "oauth-m2m", "client_id": client_id, "client_secret": secret}
    if scopes is not None:
        policy["scopes"] = scopes
    stack = await identity_stack_factory(
        tenants={"team-scope": {"identity": policy}}, identity=options
    )
    entry = {"name": "scoped-sp", "application_id": client_id, "secrets": [secret]}
    stack.emulator.identity.add_principals(
        PrincipalsUpdate.model_validate({"service_principals": [entry]})
    )
    assert await stack.run_to_end("team-scope", "scoped-1") == "scoped-sp"
    assert await stack.run_to_end("team-scope", "scoped-2") == "scoped-sp"
    by_scope = stack.identity_stats()["token_requests"]["by_scope"]
    assert by_scope == {"client_credentials": {sent: 1}}


@pytest.mark.e2e
async def test_an_exchange_asks_for_the_identitys_scopes(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """A federated identity's exchange carries its scopes, a labelled ServiceAccount's the
    gateway's default."""
    stack = await identity_stack_factory(
        tenants={
            "team-pod": {
                "identity": {
                    "type": "pod-token-federation",
                    "client_id": POD_CLIENT_ID,
                    "scopes": ["sql"],
                }
            }
        }
    )
    assert await stack.run_to_end("team-pod", "pod-scoped") == POD_SP
    sp = stack.labelled_service_account("team-fed", "runner", flavour="flyte")
    await stack.synced()
    assert await stack.run_to_end("team-fed", "sa-scoped") == sp.name
    by_scope = stack.identity_stats()["token_requests"]["by_scope"]
    assert by_scope == {"token_exchange": {"sql": 1, "all-apis": 1}}


@pytest.mark.parametrize("bad", [[], ["all apis"], ['"sql"'], ["sql", "sql"]])
def test_a_scope_that_is_no_scope_token_is_refused(bad: list[str]) -> None:
    with pytest.raises(ValidationError, match="scope"):
        OAuthM2MIdentity(type="oauth-m2m", client_id="c", client_secret=SecretStr("s"), scopes=bad)
    with pytest.raises(ValidationError, match="scope"):
        IdentityOptions(oauth_scopes=bad)


def test_a_policy_without_scopes_leaves_them_to_the_gateway() -> None:
    assert PodTokenFederation(type="pod-token-federation").scopes is None


@pytest.mark.parametrize("bad", [[], ["Not_A_Name"], ["databricks-oauth", "databricks-oauth"]])
def test_secret_names_must_be_object_names_given_once(bad: list[str]) -> None:
    with pytest.raises(ValidationError):
        IdentityOptions(secret_names=bad)
