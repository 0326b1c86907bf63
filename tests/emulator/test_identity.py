"""The emulated workspace's identity: PATs, OAuth client credentials, revocation, admin API."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from structlog.testing import capture_logs
from yarl import URL

from gateway.emulator.clock import Clock
from gateway.emulator.databricks.identity import (
    AuthFailure,
    IdentityConfig,
    IdentityService,
    Principal,
)

PAT = "dapi0123456789abcdef0123456789abcdef"
SP_ID = "8c2d0c5e-9b1f-4f7e-a0a4-3c3f0f6b1a11"
SP_SECRET = "dose0123456789abcdefABCDEF0123"
TOKEN_URL = "/oidc/v1/token"

BASE_CONFIG: dict[str, Any] = {
    "users": [{"name": "alice@example.com", "pats": [PAT]}],
    "service_principals": [
        {"name": "team-a-sp", "application_id": SP_ID, "secrets": [SP_SECRET]},
    ],
}


PRINCIPAL_KEY = web.RequestKey("principal", Principal)


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(client_id, secret)}


@dataclass
class Workspace:
    """One identity service behind a real loopback server, and a client session to call it."""

    service: IdentityService
    clock: Clock
    url: URL
    http: aiohttp.ClientSession

    async def token(self, **form: str) -> aiohttp.ClientResponse:
        return await self.http.post(self.url.with_path(TOKEN_URL), data=form)

    async def client_credentials(
        self, client_id: str = SP_ID, secret: str = SP_SECRET
    ) -> aiohttp.ClientResponse:
        return await self.http.post(
            self.url.with_path(TOKEN_URL),
            data={"grant_type": "client_credentials", "scope": "all-apis"},
            headers=basic_auth(client_id, secret),
        )

    async def access_token(self) -> str:
        resp = await self.client_credentials()
        assert resp.status == 200, await resp.text()
        token: str = (await resp.json())["access_token"]
        return token

    async def admin(self, path: str, body: dict[str, Any]) -> aiohttp.ClientResponse:
        return await self.http.post(self.url.with_path(f"/emulator/identity/{path}"), json=body)

    async def whoami(self, token: str | None) -> aiohttp.ClientResponse:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return await self.http.get(self.url.with_path("/api/2.2/whoami"), headers=headers)


def build_app(service: IdentityService) -> web.Application:
    """The identity routes, plus one /api/ route authenticated the way the server does it."""

    @web.middleware
    async def authenticate(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            try:
                request[PRINCIPAL_KEY] = service.authenticate(request.headers.get("Authorization"))
            except AuthFailure as exc:
                return web.json_response(exc.body, status=exc.status)
        return await handler(request)

    async def whoami(request: web.Request) -> web.Response:
        principal = request[PRINCIPAL_KEY]
        return web.json_response({"name": principal.name, "app": principal.application_id})

    app = web.Application(middlewares=[authenticate])
    app.add_routes([*service.routes(), web.get("/api/2.2/whoami", whoami)])
    app.cleanup_ctx.append(service.cleanup_ctx)
    return app


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[URL]:
    """Serve ``app`` on a free loopback port for the duration of the block."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield URL.build(scheme="http", host=host, port=port)
    finally:
        await runner.cleanup()


MakeWorkspace = Callable[..., Awaitable[Workspace]]


@pytest.fixture
async def make_workspace() -> AsyncIterator[MakeWorkspace]:
    """Start identity-only workspaces on port 0 with a given config; stop them afterwards."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())

        async def make(config: dict[str, Any] | None = None, **overrides: Any) -> Workspace:
            clock = Clock()
            service = IdentityService(
                IdentityConfig.model_validate({**(config or BASE_CONFIG), **overrides}), clock
            )
            url = await stack.enter_async_context(serve(build_app(service)))
            return Workspace(service, clock, url, http)

        yield make


@pytest.fixture
async def ws(make_workspace: MakeWorkspace) -> Workspace:
    return await make_workspace()


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with capture_logs() as captured:
        yield captured


# -- PATs and the answers to bad credentials ---------------------------------------------


def test_pat_authenticates_its_user() -> None:
    """A configured PAT proves its user."""
    service = IdentityService(IdentityConfig.model_validate(BASE_CONFIG), Clock())
    assert service.authenticate(f"Bearer {PAT}") == Principal("alice@example.com", None)


async def test_unknown_token_is_the_real_403(ws: Workspace) -> None:
    """An unknown bearer token gets 403 with the integer error_code Databricks sends."""
    resp = await ws.whoami("dapi-not-a-real-token")
    assert resp.status == 403
    assert await resp.json() == {"error_code": 403, "message": "Invalid access token."}


async def test_missing_credential_is_401(ws: Workspace) -> None:
    """A request without Authorization gets the 401 a real workspace sends."""
    resp = await ws.whoami(None)
    assert resp.status == 401
    assert (await resp.json())["error_code"] == 401


def test_missing_credential_can_be_the_403_quirk() -> None:
    """missing_credential_status: 403 answers a missing header like a bad token."""
    config = IdentityConfig(missing_credential_status=403)
    with pytest.raises(AuthFailure) as info:
        IdentityService(config, Clock()).authenticate(None)
    assert (info.value.status, info.value.body["message"]) == (403, "Invalid access token.")


def test_basic_scheme_is_not_a_credential_for_the_api() -> None:
    """A Basic header on an API request counts as no usable credential."""
    service = IdentityService(IdentityConfig.model_validate(BASE_CONFIG), Clock())
    with pytest.raises(AuthFailure) as info:
        service.authenticate("Basic " + base64.b64encode(b"alice:pw").decode())
    assert info.value.status == 401


def test_empty_config_is_valid() -> None:
    """IdentityConfig() with no arguments is a usable, empty identity section."""
    assert IdentityService(IdentityConfig(), Clock()).stats()["registry"]["users"] == 0


def test_config_rejects_a_pat_listed_twice() -> None:
    """Two principals cannot share a PAT: authentication would be ambiguous."""
    users = [{"name": "a@x.io", "pats": [PAT]}, {"name": "b@x.io", "pats": [PAT]}]
    with pytest.raises(ValueError, match="PAT is listed twice"):
        IdentityConfig.model_validate({"users": users})


def test_config_repr_masks_credentials() -> None:
    """Printing the config shows no PAT or secret."""
    text = repr(IdentityConfig.model_validate(BASE_CONFIG))
    assert PAT not in text
    assert SP_SECRET not in text


# -- discovery and client credentials ----------------------------------------------------


async def test_discovery_urls_are_absolute_on_the_request_host(ws: Workspace) -> None:
    """The OAuth discovery document points at this server's own token endpoint."""
    resp = await ws.http.get(ws.url.with_path("/oidc/.well-known/oauth-authorization-server"))
    doc = await resp.json()
    assert doc["token_endpoint"] == str(ws.url.with_path(TOKEN_URL))
    assert doc["authorization_endpoint"] == str(ws.url.with_path("/oidc/v1/authorize"))
    assert doc["jwks_uri"].startswith(str(ws.url))


async def test_client_credentials_with_basic_auth(ws: Workspace) -> None:
    """Client credentials in HTTP Basic get a Bearer token that authenticates the SP."""
    resp = await ws.client_credentials()
    body = await resp.json()
    assert resp.status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "all-apis"
    assert not body["access_token"].startswith("dapi")
    who = await ws.whoami(body["access_token"])
    assert await who.json() == {"name": "team-a-sp", "app": SP_ID}


async def test_client_credentials_in_the_form(ws: Workspace) -> None:
    """client_secret_post is accepted by default."""
    resp = await ws.token(grant_type="client_credentials", client_id=SP_ID, client_secret=SP_SECRET)
    assert resp.status == 200
    assert (await resp.json())["scope"] == "all-apis"


async def test_client_secret_post_refused_when_disabled(make_workspace: MakeWorkspace) -> None:
    """With accept_client_secret_post off, form credentials are invalid_client."""
    ws = await make_workspace(accept_client_secret_post=False)
    resp = await ws.token(grant_type="client_credentials", client_id=SP_ID, client_secret=SP_SECRET)
    assert resp.status == 401
    assert (await resp.json())["error"] == "invalid_client"


async def test_bad_secret_is_invalid_client(ws: Workspace) -> None:
    """A wrong secret gets 401 invalid_client with the message Databricks sends."""
    resp = await ws.client_credentials(secret="dose-wrong")
    assert resp.status == 401
    assert await resp.json() == {
        "error": "invalid_client",
        "error_description": "Client authentication failed",
    }


async def test_unknown_grant_type_is_unsupported(ws: Workspace) -> None:
    """An unknown grant_type gets 400 unsupported_grant_type."""
    resp = await ws.token(grant_type="password", username="a", password="b")
    assert resp.status == 400
    assert (await resp.json())["error"] == "unsupported_grant_type"


async def test_missing_grant_type_is_invalid_request(ws: Workspace) -> None:
    """A form without grant_type gets 400 invalid_request."""
    resp = await ws.token(scope="all-apis")
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_request"


async def test_json_body_is_invalid_request(ws: Workspace) -> None:
    """The token endpoint only takes a form body."""
    resp = await ws.http.post(
        ws.url.with_path(TOKEN_URL), json={"grant_type": "client_credentials"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_request"


async def test_requested_scope_is_echoed(ws: Workspace) -> None:
    """The scope asked for is the scope granted."""
    resp = await ws.http.post(
        ws.url.with_path(TOKEN_URL),
        data={"grant_type": "client_credentials", "scope": "sql  offline_access"},
        headers=basic_auth(SP_ID, SP_SECRET),
    )
    assert (await resp.json())["scope"] == "sql offline_access"


async def test_issued_token_expires_with_the_clock(make_workspace: MakeWorkspace) -> None:
    """An access token stops working once the emulator's clock passes its TTL."""
    ws = await make_workspace(access_token_ttl_seconds=600)
    token = await ws.access_token()
    ws.clock.advance(599)
    assert (await ws.whoami(token)).status == 200
    ws.clock.advance(2)
    resp = await ws.whoami(token)
    assert resp.status == 403
    assert ws.service.stats()["auth_failures"]["by_reason"] == {"expired_token": 1}


# -- revocation, rotation, runtime principals (admin API) --------------------------------


async def test_revoke_one_token(ws: Workspace) -> None:
    """A revoked access token gets 403; another token of the same SP still works."""
    doomed, kept = await ws.access_token(), await ws.access_token()
    resp = await ws.admin("revoke", {"token": doomed})
    assert await resp.json() == {"revoked": 1}
    assert (await ws.whoami(doomed)).status == 403
    assert (await ws.whoami(kept)).status == 200


async def test_revoke_principal_revokes_its_issued_tokens(ws: Workspace) -> None:
    """Revoking a principal kills its issued tokens, and its PATs only when asked."""
    token = await ws.access_token()
    resp = await ws.admin("revoke", {"principal": "team-a-sp"})
    assert await resp.json() == {"revoked": 1}
    assert (await ws.whoami(token)).status == 403
    assert (await ws.client_credentials()).status == 200
    await ws.admin("revoke", {"principal": "alice@example.com"})
    assert (await ws.whoami(PAT)).status == 200
    await ws.admin("revoke", {"principal": "alice@example.com", "include_pats": True})
    assert (await ws.whoami(PAT)).status == 403


async def test_revoke_unknown_principal_is_404(ws: Workspace) -> None:
    """Revoking a principal nobody configured is a 404, not a silent no-op."""
    resp = await ws.admin("revoke", {"principal": "nobody@example.com"})
    assert resp.status == 404


async def test_rotated_secret_replaces_the_old_one(ws: Workspace) -> None:
    """After rotation the old secret is invalid_client, the new one works, tokens live on."""
    token = await ws.access_token()
    resp = await ws.admin("rotate-secret", {"application_id": SP_ID, "new_secret": "dose-new"})
    assert resp.status == 200
    assert (await ws.client_credentials()).status == 401
    assert (await ws.client_credentials(secret="dose-new")).status == 200
    assert (await ws.whoami(token)).status == 200


async def test_principals_added_at_runtime(ws: Workspace) -> None:
    """The admin API adds a user PAT and a second secret to an existing SP."""
    resp = await ws.admin(
        "principals",
        {
            "users": [{"name": "bob@example.com", "pats": ["dapi-bob"]}],
            "service_principals": [
                {"name": "team-a-sp", "application_id": SP_ID, "secrets": ["dose-second"]}
            ],
        },
    )
    assert resp.status == 200
    assert (await (await ws.whoami("dapi-bob")).json())["name"] == "bob@example.com"
    assert (await ws.client_credentials(secret="dose-second")).status == 200
    assert (await ws.client_credentials()).status == 200


async def test_conflicting_principal_is_409(ws: Workspace) -> None:
    """An application id cannot be re-added under another name."""
    sp = {"name": "someone-else", "application_id": SP_ID}
    resp = await ws.admin("principals", {"service_principals": [sp]})
    assert resp.status == 409


async def test_invalid_admin_body_does_not_echo_secrets(ws: Workspace) -> None:
    """A rejected admin body is a 400 that does not repeat the credential it carried."""
    resp = await ws.admin("rotate-secret", {"new_secret": "dose-leaky", "extra": 1})
    assert resp.status == 400
    assert "dose-leaky" not in await resp.text()


async def test_stats_count_token_calls_and_failures(ws: Workspace) -> None:
    """Stats count token calls by grant and principal, tokens issued and auth failures."""
    await ws.access_token()
    await ws.client_credentials(secret="wrong")
    await ws.whoami("nope")
    resp = await ws.http.get(ws.url.with_path("/emulator/identity/stats"))
    stats = await resp.json()
    assert stats["token_requests"]["by_grant_type"] == {"client_credentials": 2}
    assert stats["token_requests"]["by_principal"] == {"team-a-sp": 2}
    assert stats["token_requests"]["errors"] == {"invalid_client": 1}
    assert stats["tokens_issued"] == {"total": 1, "by_principal": {"team-a-sp": 1}}
    assert stats["auth_failures"]["by_reason"] == {"invalid_token": 1}


async def test_logs_carry_principals_never_credentials(
    ws: Workspace, logs: list[MutableMapping[str, Any]]
) -> None:
    """Token issuance and refusals are logged by principal name, with no credential."""
    token = await ws.access_token()
    await ws.client_credentials(secret="dose-wrong-secret")
    await ws.admin("revoke", {"token": token})
    events = {e["event"]: e for e in logs}
    assert events["emulator_token_issued"]["principal"] == "team-a-sp"
    assert events["emulator_token_refused"]["error"] == "invalid_client"
    text = repr(logs)
    for credential in (token, SP_SECRET, "dose-wrong-secret"):
        assert credential not in text


def test_yaml_example_loads() -> None:
    """The documented YAML example is a valid identity section."""
    section = yaml.safe_load(YAML_EXAMPLE)["identity"]
    config = IdentityConfig.model_validate(section)
    assert config.service_principals[0].federation_policies[0].audiences == ("lakegate-dbx",)
    assert config.federation_policies[0].audiences is None


YAML_EXAMPLE = """
identity:
  account_id: 7f3c2a10-0000-4000-8000-000000000001
  access_token_ttl_seconds: 3600
  accept_client_secret_post: true
  missing_credential_status: 401
  users:
    - name: alice@example.com
      pats: [dapi0123456789abcdef0123456789abcdef]
  service_principals:
    - name: team-a-sp
      application_id: 8c2d0c5e-9b1f-4f7e-a0a4-3c3f0f6b1a11
      secrets: [dose0123456789abcdefABCDEF0123]
      pats: []
      federation_policies:
        - issuer: http://127.0.0.1:8443
          audiences: [lakegate-dbx]
          subject: system:serviceaccount:team-a:lakegate
  federation_policies:
    - issuer: https://token.actions.githubusercontent.com
      subject_claim: email
      jwks_uri: https://token.actions.githubusercontent.com/.well-known/jwks
"""
