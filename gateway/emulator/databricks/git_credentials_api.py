"""The Git Credentials API's handlers, on the ``GitCredentialStore`` (``git_credentials``
says what they answer and why)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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
from gateway.emulator.databricks.workspace import PRINCIPAL, api_error
from gateway.logs import get_logger

log = get_logger(__name__)


def _invalid(message: str) -> web.Response:
    return api_error(400, "INVALID_PARAMETER_VALUE", message)


def _no_such(credential_id: str) -> web.Response:
    return api_error(
        404, "RESOURCE_DOES_NOT_EXIST", f"Git credential with id {credential_id} does not exist."
    )


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    text = await request.text()
    try:
        body = json.loads(text) if text.strip() else {}
    except ValueError:
        return api_error(400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request")
    if not isinstance(body, dict):
        return api_error(
            400,
            "MALFORMED_REQUEST",
            "Invalid JSON given in the body of the request - expected a map",
        )
    return {k: v for k, v in body.items() if v is not None}


def _provider(body: Mapping[str, Any]) -> str | web.Response:
    raw = body.get("git_provider")
    if not isinstance(raw, str) or not raw.strip():
        return _invalid("git_provider is required")
    canonical = canonical_provider(raw)
    if canonical is None:
        return _invalid(f"Invalid Git provider: {raw}. Supported providers: {', '.join(PROVIDERS)}")
    return canonical


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

    def _mine(self, request: web.Request) -> tuple[str, dict[int, StoredCredential]]:
        name = request[PRINCIPAL].name
        return name, self._store.by_principal.setdefault(name, {})

    def _find(self, request: web.Request) -> tuple[str, StoredCredential] | web.Response:
        raw = request.match_info["credential_id"]
        name, mine = self._mine(request)
        found = mine.get(int(raw)) if raw.isdigit() else None
        return (name, found) if found is not None else _no_such(raw)

    async def list(self, request: web.Request) -> web.Response:
        self._store.ops["list"] += 1
        _, mine = self._mine(request)
        views = [c.view() for c in mine.values()]
        return web.json_response({"credentials": views} if views else {})

    async def get(self, request: web.Request) -> web.Response:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        return web.json_response(found[1].view())

    async def create(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        provider = _provider(body)
        if isinstance(provider, web.Response):
            return provider
        name, mine = self._mine(request)
        if any(c.git_provider == provider for c in mine.values()):
            self._store.ops["create_refused"] += 1
            return api_error(
                409,
                "RESOURCE_ALREADY_EXISTS",
                f"A Git credential already exists for provider {provider}. Only one credential "
                "per provider is allowed for service principals.",
            )
        token = body.get("personal_access_token")
        token = token if isinstance(token, str) and token else None
        username = body.get("git_username")
        credential = StoredCredential(
            self._store.new_id(),
            provider,
            username if isinstance(username, str) else None,
            token is not None,
        )
        mine[credential.credential_id] = credential
        self._store.record(name, provider, token)
        self._store.ops["create"] += 1
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
        name, credential = found
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        provider = _provider(body)
        if isinstance(provider, web.Response):
            return provider
        _, mine = self._mine(request)
        if provider != credential.git_provider and any(
            c.git_provider == provider for c in mine.values()
        ):
            return api_error(
                409,
                "RESOURCE_ALREADY_EXISTS",
                f"A Git credential already exists for provider {provider}.",
            )
        if provider != credential.git_provider:
            self._store.record(name, credential.git_provider, None, deleted=True)
        credential.git_provider = provider
        if isinstance(body.get("git_username"), str):
            credential.git_username = body["git_username"]
        token = body.get("personal_access_token")
        if isinstance(token, str) and token:
            credential.has_token = True
            self._store.record(name, provider, token)
        self._store.ops["update"] += 1
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
        name, credential = found
        del self._store.by_principal[name][credential.credential_id]
        self._store.record(name, credential.git_provider, None, deleted=True)
        self._store.ops["delete"] += 1
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
