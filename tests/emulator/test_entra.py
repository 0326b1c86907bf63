"""The emulated Entra ID: token endpoints, client secrets and assertions, workspace acceptance."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import yaml
from aiohttp import web
from pydantic import ValidationError
from structlog.testing import capture_logs
from yarl import URL

from gateway.emulator.databricks import EmulatorConfig, load_config
from gateway.emulator.databricks.entra_credentials import EntraError, requested_resource
from tests.emulator._http import open_api
from tests.emulator.test_identity import serve
from tests.emulator.test_identity_federation import Issuer
from tests.fixtures.databricks_emulator import (
    DatabricksEmulator,
    EmulatorFactory,
    emulator_config,
)
from tests.support.jwt_issuer import shared_rsa_key

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011e17a"
APP_ID = "3c9e1f0a-5b7d-4e2f-8a61-0d4c2b9e7f13"
APP_NAME = "lakegate-azure-team-a"
APP_SECRET = "Zx8Q~entra0000000000000000000000000000"
WI_APP_ID = "b7a4d2c1-9e3f-4a5b-8c6d-1f2e3d4c5b6a"
WI_APP_NAME = "lakegate-azure-workload"
SUBJECT = "system:serviceaccount:team-a:lakegate"
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
DATABRICKS_SCOPE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"
MANAGEMENT_SCOPE = "https://management.core.windows.net//.default"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    """A Kubernetes-like OIDC issuer on loopback whose tokens the workload app trusts."""
    issuer = Issuer({"rsa-1": shared_rsa_key(0)})
    async with serve(issuer.app()) as url:
        issuer.url = url
        yield issuer


def entra_section(issuer_url: str) -> dict[str, Any]:
    return {
        "tenants": [
            {
                "tenant_id": TENANT,
                "apps": [
                    {"client_id": APP_ID, "name": APP_NAME, "secrets": [APP_SECRET]},
                    {
                        "client_id": WI_APP_ID,
                        "name": WI_APP_NAME,
                        "federated_credentials": [{"issuer": issuer_url, "subject": SUBJECT}],
                    },
                ],
            }
        ]
    }


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any


@dataclass
class Entra:
    """The emulator, the issuer, and calls to the Entra endpoints the emulator serves."""

    emulator: DatabricksEmulator
    issuer: Issuer
    http: aiohttp.ClientSession

    async def post(self, path: str, form: dict[str, str], **headers: str) -> Reply:
        async with self.http.post(self.emulator.url + path, data=form, headers=headers) as resp:
            return Reply(resp.status, await resp.json(), resp.headers)

    async def token(
        self,
        *,
        tenant: str = TENANT,
        v1: bool = False,
        headers: dict[str, str] | None = None,
        **form: str | None,
    ) -> Reply:
        """A v2 (or v1) token request for the secret app; ``None`` drops a field."""
        return await self.request(form, tenant=tenant, v1=v1, headers=headers)

    async def request(
        self,
        overrides: Mapping[str, str | None],
        *,
        tenant: str = TENANT,
        v1: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        base: dict[str, str | None] = {
            "grant_type": "client_credentials",
            "client_id": APP_ID,
            "client_secret": APP_SECRET,
        }
        if v1:
            base["resource"] = DATABRICKS_SCOPE.removesuffix("/.default")
        else:
            base["scope"] = DATABRICKS_SCOPE
        base.update(overrides)
        sent = {k: v for k, v in base.items() if v is not None}
        path = f"/{tenant}/oauth2/token" if v1 else f"/{tenant}/oauth2/v2.0/token"
        return await self.post(path, sent, **(headers or {}))

    async def assertion_token(self, assertion: str) -> Reply:
        return await self.token(
            client_id=WI_APP_ID,
            client_secret=None,
            client_assertion_type=ASSERTION_TYPE,
            client_assertion=assertion,
        )

    def sign(self, **claims: Any) -> str:
        return self.issuer.sign(**{"aud": EXCHANGE_AUDIENCE, **claims})

    async def access_token(self, **form: str | None) -> str:
        reply = await self.request(form)
        assert reply.status == 200, reply.body
        token: str = reply.body["access_token"]
        return token


@pytest.fixture
async def entra(
    databricks_emulator_factory: EmulatorFactory, issuer: Issuer
) -> AsyncIterator[Entra]:
    emulator = await databricks_emulator_factory(
        emulator_config(cloud="AZURE", entra=entra_section(issuer.iss))
    )
    async with aiohttp.ClientSession() as http:
        yield Entra(emulator, issuer, http)


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def assert_entra_error(reply: Reply, status: int, error: str, code: int) -> None:
    assert reply.status == status, reply.body
    assert reply.body["error"] == error
    assert reply.body["error_codes"] == [code]
    assert reply.body["error_description"].startswith(f"AADSTS{code}: ")


# -- client secret ------------------------------------------------------------------------


async def test_client_secret_grant_issues_an_entra_shaped_token(entra: Entra) -> None:
    """A v2 client-credentials request answers like Entra, with a v1-shaped access token."""
    reply = await entra.token()
    assert reply.status == 200, reply.body
    assert {k: v for k, v in reply.body.items() if k != "access_token"} == {
        "token_type": "Bearer",
        "expires_in": 3599,
        "ext_expires_in": 3599,
    }
    assert reply.headers["Cache-Control"] == "no-store, no-cache"
    claims = claims_of(reply.body["access_token"])
    assert claims["aud"] == "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
    assert claims["tid"] == TENANT
    assert claims["iss"] == f"https://sts.windows.net/{TENANT}/"
    assert (claims["appid"], claims["appidacr"]) == (APP_ID, "1")
    assert claims["exp"] - claims["iat"] == 3599


async def test_bad_secret_is_aadsts7000215(entra: Entra) -> None:
    """A wrong secret is 401 invalid_client 7000215, with Entra's trace fields."""
    reply = await entra.token(
        client_secret="wrong", headers={"client-request-id": "5a1b2c3d-0000-4000-8000-000000000001"}
    )
    assert_entra_error(reply, 401, "invalid_client", 7000215)
    assert "Invalid client secret provided" in reply.body["error_description"]
    assert reply.body["correlation_id"] == "5a1b2c3d-0000-4000-8000-000000000001"
    assert reply.body["trace_id"]
    assert reply.body["error_uri"].endswith("/error?code=7000215")


async def test_unknown_client_is_aadsts700016(entra: Entra) -> None:
    """A client id the tenant does not hold is 400 unauthorized_client 700016."""
    reply = await entra.token(client_id="00000000-0000-0000-0000-000000000000")
    assert_entra_error(reply, 400, "unauthorized_client", 700016)


async def test_unknown_tenant_is_aadsts90002(entra: Entra) -> None:
    """A tenant the emulator does not play is 400 invalid_request 90002."""
    reply = await entra.token(tenant="contoso.onmicrosoft.com")
    assert_entra_error(reply, 400, "invalid_request", 90002)


@pytest.mark.parametrize(
    ("form", "error", "code"),
    [
        ({"scope": "all-apis"}, "invalid_scope", 1002012),
        ({"scope": "https://graph.microsoft.com/.default"}, "invalid_resource", 500011),
        ({"scope": f"{DATABRICKS_SCOPE} {MANAGEMENT_SCOPE}"}, "invalid_scope", 70011),
        ({"scope": None}, "invalid_request", 900144),
        ({"grant_type": None}, "invalid_request", 900144),
        ({"grant_type": "password"}, "unsupported_grant_type", 70003),
    ],
    ids=["no-default", "unknown-resource", "two-scopes", "no-scope", "no-grant", "password"],
)
async def test_malformed_requests_are_400(
    entra: Entra, form: dict[str, str | None], error: str, code: int
) -> None:
    """Wrong scopes and grants are refused before the secret is looked at."""
    assert_entra_error(await entra.request(form), 400, error, code)


async def test_neither_secret_nor_assertion_is_aadsts7000218(entra: Entra) -> None:
    """A client that sends no credential is 401 invalid_client 7000218."""
    assert_entra_error(await entra.token(client_secret=None), 401, "invalid_client", 7000218)


async def test_v1_endpoint_takes_a_resource_and_answers_strings(entra: Entra) -> None:
    """The v1 endpoint names the resource and sends its numbers as strings, as v1 does."""
    reply = await entra.token(v1=True)
    assert reply.status == 200, reply.body
    assert reply.body["expires_in"] == "3599"
    assert reply.body["ext_expires_in"] == "3599"
    assert int(reply.body["expires_on"]) - int(reply.body["not_before"]) == 3599
    assert reply.body["resource"] == "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
    async with open_api(entra.emulator) as api:
        await api.submit(token=reply.body["access_token"])


DBX = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
MGMT = "https://management.core.windows.net/"


@pytest.mark.parametrize(
    ("requested", "v1", "resource"),
    [
        (f"{DBX}/.default", False, DBX),
        (f"{MGMT}/.default", False, MGMT),
        ("https://management.core.windows.net/.default", False, MGMT),
        (f"  {DBX}/.default ", False, DBX),
        (DBX, True, DBX),
        ("https://management.core.windows.net", True, MGMT),
        (f"{DBX}/.default/x", False, 1002012),
        (DBX, False, 1002012),
        (f"{DBX}/.default", True, 500011),
        ("api://lakegate/.default", False, 500011),
        (f"{DBX}/.default offline_access", False, 70011),
    ],
)
def test_requested_resource(requested: str, v1: bool, resource: str | int) -> None:
    """A scope or resource names Azure Databricks or management, or is an AADSTS error."""
    if isinstance(resource, str):
        assert requested_resource(requested, v1=v1, tenant=TENANT) == resource
        return
    with pytest.raises(EntraError) as caught:
        requested_resource(requested, v1=v1, tenant=TENANT)
    assert caught.value.code == resource


# -- client assertion (workload identity) -------------------------------------------------


async def test_client_assertion_grant_issues_a_token(entra: Entra) -> None:
    """A JWT from a trusted issuer, for the credential's subject and audience, logs in."""
    reply = await entra.assertion_token(entra.sign())
    assert reply.status == 200, reply.body
    claims = claims_of(reply.body["access_token"])
    assert (claims["appid"], claims["appidacr"]) == (WI_APP_ID, "2")


async def test_issuer_keys_are_fetched_once_for_many_assertions(entra: Entra) -> None:
    """The issuer's discovery document and JWKS are cached between token requests."""
    for _ in range(3):
        assert (await entra.assertion_token(entra.sign())).status == 200
    assert entra.issuer.hits == {"discovery": 1, "keys": 1}


@pytest.mark.parametrize(
    ("claims", "status", "error", "code"),
    [
        ({"sub": "system:serviceaccount:team-b:lakegate"}, 401, "invalid_client", 700213),
        ({"sub": SUBJECT.upper()}, 401, "invalid_client", 700213),
        ({"aud": "lakegate-dbx"}, 401, "invalid_client", 700212),
        ({"iss": "https://token.actions.githubusercontent.com"}, 401, "invalid_client", 700211),
        ({"exp": int(time.time()) - 3600}, 401, "invalid_client", 700024),
    ],
    ids=["wrong-subject", "subject-case", "wrong-audience", "wrong-issuer", "expired"],
)
async def test_assertions_that_match_no_credential_are_refused(
    entra: Entra, claims: dict[str, Any], status: int, error: str, code: int
) -> None:
    """Issuer, subject (case-sensitively), audience and expiry must all hold."""
    assert_entra_error(await entra.assertion_token(entra.sign(**claims)), status, error, code)


async def test_assertion_with_a_bad_signature_is_aadsts700027(entra: Entra) -> None:
    """A JWT signed by another key under the issuer's kid fails signature validation."""
    forged = entra.sign(key=shared_rsa_key(1))
    assert_entra_error(await entra.assertion_token(forged), 401, "invalid_client", 700027)


async def test_assertion_that_is_no_jwt_is_aadsts50027(entra: Entra) -> None:
    """Garbage in client_assertion is 400 invalid_request 50027."""
    reply = await entra.assertion_token("not-a-jwt")
    assert_entra_error(reply, 400, "invalid_request", 50027)


async def test_issuer_without_discovery_is_aadsts50166(
    databricks_emulator_factory: EmulatorFactory, issuer: Issuer
) -> None:
    """An issuer whose discovery document cannot be fetched is 400 invalid_request 50166."""
    async with serve(web.Application()) as bare, aiohttp.ClientSession() as http:
        iss = str(bare).rstrip("/")
        emulator = await databricks_emulator_factory(emulator_config(entra=entra_section(iss)))
        entra = Entra(emulator, issuer, http)
        reply = await entra.assertion_token(entra.sign(iss=iss))
    assert_entra_error(reply, 400, "invalid_request", 50166)
    assert "HTTP 404" in reply.body["error_description"]


# -- the workspace's view of Entra tokens -------------------------------------------------


async def test_entra_token_submits_a_run_attributed_to_the_app(entra: Entra) -> None:
    """runs/submit with an Entra token creates a run whose principal is the app."""
    token = await entra.access_token()
    async with open_api(entra.emulator) as api:
        run_id = await api.submit(token=token, run_name="entra-run")
        reply = await api.call("GET", "runs/get", params={"run_id": run_id}, token=token)
    assert reply.status == 200, reply.body
    assert reply.body["creator_user_name"] == APP_ID
    [run] = entra.emulator.runs()
    assert (run["principal"], run["application_id"]) == (APP_NAME, APP_ID)


async def test_workload_identity_token_is_attributed_to_its_app(entra: Entra) -> None:
    """A token got with a client assertion acts as the federated app."""
    reply = await entra.assertion_token(entra.sign())
    async with open_api(entra.emulator) as api:
        await api.submit(token=reply.body["access_token"])
    assert entra.emulator.runs()[0]["principal"] == WI_APP_NAME


async def test_management_token_is_refused_by_the_workspace(entra: Entra) -> None:
    """A token for the management resource is issued but is no workspace credential."""
    token = await entra.access_token(scope=MANAGEMENT_SCOPE)
    assert claims_of(token)["aud"] == "https://management.core.windows.net/"
    async with open_api(entra.emulator) as api:
        reply = await api.call("POST", "runs/submit", json={"tasks": []}, token=token)
    assert (reply.status, reply.body) == (
        403,
        {"error_code": 403, "message": "Invalid access token."},
    )
    auth = entra.emulator.stats()["identity"]["auth_failures"]["by_reason"]
    assert auth == {"wrong_audience": 1}


async def test_token_within_30_seconds_of_expiry_is_refused(entra: Entra) -> None:
    """Azure Databricks refuses an Entra token with under 30 s left, then as expired."""
    token = await entra.access_token()
    async with open_api(entra.emulator) as api:
        entra.emulator.advance(3599 - 31)
        assert (await api.call("GET", "runs/list", token=token)).status == 200
        entra.emulator.advance(2)
        reply = await api.call("GET", "runs/list", token=token)
        assert reply.status == 403
        assert reply.body == {
            "error_code": 403,
            "message": "Token is expiring within 30 seconds. (token expired)",
        }
        assert reply.headers["X-Databricks-Reason-Phrase"] == reply.body["message"]
        entra.emulator.advance(60)
        reply = await api.call("GET", "runs/list", token=token)
    assert reply.body == {"error_code": 403, "message": "Invalid access token."}
    auth = entra.emulator.stats()["identity"]["auth_failures"]["by_reason"]
    assert auth == {"expiring_token": 1, "expired_token": 1}


async def test_revoking_the_app_revokes_its_entra_tokens(entra: Entra) -> None:
    """The identity admin API revokes Entra tokens by app name, like any principal's."""
    token = await entra.access_token()
    async with open_api(entra.emulator) as api:
        reply = await api.admin("POST", "identity/revoke", {"principal": APP_NAME})
        assert reply.body == {"revoked": 1}
        assert (await api.call("GET", "runs/list", token=token)).status == 403


async def test_entra_credentials_do_not_work_at_the_databricks_token_endpoint(
    entra: Entra,
) -> None:
    """An Entra app id and secret sent to /oidc/v1/token fail invalid_client (reference §5)."""
    form = {"grant_type": "client_credentials", "scope": "all-apis"}
    headers = {"Authorization": aiohttp.encode_basic_auth(APP_ID, APP_SECRET)}
    url = f"{entra.emulator.url}/oidc/v1/token"
    async with entra.http.post(url, data=form, headers=headers) as r:
        assert r.status == 401
        assert (await r.json())["error"] == "invalid_client"


async def test_aad_auth_redirects_to_the_workspace_tenant(entra: Entra) -> None:
    """GET /aad/auth answers 302 with the tenant id as the Location's first path segment."""
    url = f"{entra.emulator.url}/aad/auth"
    async with entra.http.get(url, allow_redirects=False) as resp:
        assert resp.status == 302
        location = URL(resp.headers["Location"])
    assert location.path.split("/")[1] == TENANT


async def test_aad_auth_is_404_without_tenants(databricks_emulator: DatabricksEmulator) -> None:
    """A workspace with no Entra tenant has no tenant to discover."""
    url = f"{databricks_emulator.url}/aad/auth"
    async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False) as resp:
        assert resp.status == 404


# -- plumbing: stats, faults, logs, config ------------------------------------------------


async def test_stats_count_requests_by_tenant_app_and_grant(entra: Entra) -> None:
    """Token requests are counted by endpoint, tenant, app, grant and AADSTS error."""
    await entra.access_token()
    await entra.token(client_secret="wrong")
    await entra.assertion_token(entra.sign())
    await entra.token(tenant="nope")
    await entra.token(v1=True)
    stats = entra.emulator.stats()["identity"]["entra"]
    assert stats["token_requests"] == {
        "total": 5,
        "by_endpoint": {"v2": 4, "v1": 1},
        "by_tenant": {TENANT: 4, "nope": 1},
        "by_app": {APP_NAME: 3, WI_APP_NAME: 1},
        "by_grant": {"client_secret": 3, "client_assertion": 1},
        "errors": {"AADSTS7000215": 1, "AADSTS90002": 1},
    }
    assert stats["tokens_issued"] == {
        "total": 3,
        "by_app": {APP_NAME: 2, WI_APP_NAME: 1},
        "by_resource": {"databricks": 3},
    }


async def test_faults_apply_to_the_entra_token_endpoint(entra: Entra) -> None:
    """A fault rule on the Entra path fires there, then the endpoint works again."""
    entra.emulator.fault(path="*/oauth2/v2.0/token", status=503)
    assert (await entra.token()).status == 503
    assert (await entra.token()).status == 200


async def test_logs_name_apps_never_credentials(entra: Entra) -> None:
    """Issues and refusals are logged by app; no secret, assertion or token appears."""
    assertion = entra.sign()
    with capture_logs() as logs:
        token = await entra.access_token()
        await entra.token(client_secret="wrong-secret-value")
        await entra.assertion_token(assertion)
    events: list[MutableMapping[str, Any]] = logs
    issued = [e for e in events if e["event"] == "emulator_entra_token_issued"]
    assert [e["app"] for e in issued] == [APP_NAME, WI_APP_NAME]
    refused = [e for e in events if e["event"] == "emulator_entra_token_refused"]
    assert refused[0]["error_code"] == 7000215
    text = repr(events)
    for secret in (token, APP_SECRET, "wrong-secret-value", assertion):
        assert secret not in text


def test_config_refuses_an_app_named_unlike_its_service_principal() -> None:
    """An Entra app that is also an identity service principal must carry its name."""
    identity = {"service_principals": [{"name": "other", "application_id": APP_ID}]}
    with pytest.raises(ValidationError, match="is named 'lakegate-azure-team-a'"):
        EmulatorConfig.model_validate({"identity": identity, "entra": entra_section("http://x")})


def test_config_refuses_a_client_id_listed_twice_in_a_tenant() -> None:
    """Two apps with one client id in one tenant are a config error."""
    app = {"client_id": APP_ID, "name": APP_NAME}
    entra = {"tenants": [{"tenant_id": TENANT, "apps": [app, app]}]}
    with pytest.raises(ValidationError, match="listed twice"):
        EmulatorConfig.model_validate({"entra": entra})


def test_config_repr_masks_entra_secrets() -> None:
    """Printing the config never shows an app's secret."""
    config = EmulatorConfig.model_validate({"entra": entra_section("http://x")})
    assert APP_SECRET not in repr(config)


def test_yaml_example_loads(tmp_path: Path) -> None:
    """The documented YAML example is a valid emulator config."""
    path = tmp_path / "emulator.yaml"
    path.write_text(YAML_EXAMPLE)
    config = load_config(str(path))
    [tenant] = config.entra.tenants
    assert tenant.apps[1].federated_credentials[0].audiences == (EXCHANGE_AUDIENCE,)
    assert yaml.safe_load(YAML_EXAMPLE)["entra"]["token_ttl_seconds"] == 3599


YAML_EXAMPLE = """
cloud: AZURE
entra:
  token_ttl_seconds: 3599
  workspace_min_remaining_seconds: 30
  assertion_clock_skew_seconds: 300
  tenants:
    - tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011e17a
      apps:
        - client_id: 3c9e1f0a-5b7d-4e2f-8a61-0d4c2b9e7f13
          name: lakegate-azure-team-a
          secrets: [Zx8Q~entra0000000000000000000000000000]
        - client_id: b7a4d2c1-9e3f-4a5b-8c6d-1f2e3d4c5b6a
          name: lakegate-azure-workload
          federated_credentials:
            - issuer: http://127.0.0.1:8443
              subject: system:serviceaccount:team-a:lakegate
"""
