"""The Git Credentials API's handlers, on the ``GitCredentialStore`` (``git_credentials``
says what they answer and why)."""

from __future__ import annotations

from aiohttp import web

from gateway.emulator.databricks.entra import EntraService
from gateway.emulator.databricks.git_credentials import (
    PATH,
    PROVIDERS,
    GitCredentialStore,
    Inspect,
    StoredCredential,
    TokenFacts,
    canonical_provider,
)
from gateway.emulator.databricks.validation import Invalid, parse_json_object
from gateway.emulator.databricks.workspace import PRINCIPAL, api_error
from gateway.logs import get_logger

log = get_logger(__name__)


def _invalid(message: str) -> web.Response:
    return api_error(400, "INVALID_PARAMETER_VALUE", message)


def _no_such(credential_id: str) -> web.Response:
    return api_error(
        404, "RESOURCE_DOES_NOT_EXIST", f"Git credential with id {credential_id} does not exist."
    )


async def _fields(request: web.Request) -> tuple[str, str | None, str | None] | web.Response:
    """The body's provider (required, as Databricks spells it), username and token."""
    body = parse_json_object(await request.text())
    if isinstance(body, Invalid):
        return api_error(400, body.error_code, body.message)
    raw = body.get("git_provider")
    if not isinstance(raw, str) or not raw.strip():
        return _invalid("git_provider is required")
    provider = canonical_provider(raw)
    if provider is None:
        return _invalid(f"Invalid Git provider: {raw}. Supported providers: {', '.join(PROVIDERS)}")
    username, token = body.get("git_username"), body.get("personal_access_token")
    return (
        provider,
        username if isinstance(username, str) else None,
        token if isinstance(token, str) and token else None,
    )


class GitCredentialsApi:
    """The handlers; the store is their only state."""

    def __init__(self, store: GitCredentialStore) -> None:
        self._store = store

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(PATH, self.list),
            web.post(PATH, self.create),
            web.get(PATH + "/{credential_id}", self.get),
            web.patch(PATH + "/{credential_id}", self.update),
            web.delete(PATH + "/{credential_id}", self.delete),
            web.get("/emulator/git-credentials", self.summaries),
        ]

    def _find(self, request: web.Request) -> tuple[str, StoredCredential] | web.Response:
        raw = request.match_info["credential_id"]
        name = request[PRINCIPAL].name
        found = self._store.of(name).get(int(raw)) if raw.isdigit() else None
        return (name, found) if found is not None else _no_such(raw)

    async def list(self, request: web.Request) -> web.Response:
        self._store.ops["list"] += 1
        views = [c.view() for c in self._store.of(request[PRINCIPAL].name).values()]
        return web.json_response({"credentials": views} if views else {})

    async def get(self, request: web.Request) -> web.Response:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        return web.json_response(found[1].view())

    async def create(self, request: web.Request) -> web.Response:
        fields = await _fields(request)
        if isinstance(fields, web.Response):
            return fields
        provider, username, token = fields
        name = request[PRINCIPAL].name
        credential = self._store.create(name, provider, username, token)
        if credential is None:
            return api_error(
                409,
                "RESOURCE_ALREADY_EXISTS",
                f"A Git credential already exists for provider {provider}. Only one credential "
                "per provider is allowed for service principals.",
            )
        log.info(
            "emulator_git_credential_created",
            principal=name,
            provider=provider,
            credential_id=credential.credential_id,
        )
        return web.json_response(credential.view())

    async def update(self, request: web.Request) -> web.Response:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        fields = await _fields(request)
        if isinstance(fields, web.Response):
            return fields
        name, credential = found
        provider, username, token = fields
        if not self._store.update(name, credential, provider, username, token):
            return api_error(
                409,
                "RESOURCE_ALREADY_EXISTS",
                f"A Git credential already exists for provider {provider}.",
            )
        log.info(
            "emulator_git_credential_updated",
            principal=name,
            provider=provider,
            credential_id=credential.credential_id,
        )
        return web.json_response({})

    async def delete(self, request: web.Request) -> web.Response:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        self._store.delete(*found)
        return web.json_response({})

    async def summaries(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"credentials": self._store.summaries(), "ops": dict(self._store.ops)}
        )


def entra_facts(entra: EntraService) -> Inspect:
    """How the store tells an Entra token for Azure DevOps (and its expiry) from others."""

    def inspect(token: str) -> TokenFacts:
        issued = entra.issued(token)
        if issued is None:
            return TokenFacts(None, None)
        return TokenFacts(issued.resource, int(issued.expires_at * 1000))

    return inspect
