"""PAT, OAuth M2M and token-file sources, read at fetch time, against the workspace emulator."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest

from gateway.databricks.retries import RetryPolicy
from gateway.errors import CredentialUnavailable, TokenEndpointError
from gateway.identity import sources
from gateway.identity.cache import CachedCredential, CacheKey, TokenCache
from tests.fixtures.databricks_emulator import DatabricksEmulator
from tests.identity.conftest import FakeSecrets

PAT = "dapi0123456789abcdef0123456789ab"
NEW_SECRET = "dose11111111111111111111111111111b"
QUICK = RetryPolicy(deadline=0.5, initial=0.01, maximum=0.02)


async def workspace_status(
    session: aiohttp.ClientSession, emulator: DatabricksEmulator, token: str
) -> int:
    """The status a Jobs API call with ``token`` gets: 200 when the workspace accepts it."""
    async with session.get(
        emulator.url + "/api/2.1/jobs/runs/list", headers=emulator.headers(token)
    ) as resp:
        return resp.status


# --- PAT ------------------------------------------------------------------------------------


async def test_a_pat_value_is_its_own_token_and_never_expires() -> None:
    """pat() yields the value, with no expiry, so the cache never refreshes it."""
    token = await sources.pat(PAT)()
    assert (token.value, token.expires_at) == (PAT, None)


def test_an_empty_pat_is_unavailable() -> None:
    """An empty PAT is refused when the source is built, naming the namespace."""
    with pytest.raises(CredentialUnavailable) as raised:
        sources.pat("  ", namespace="team-a")
    assert raised.value.namespace == "team-a"


async def test_a_pat_secret_is_read_at_each_fetch(secrets: FakeSecrets) -> None:
    """A rotated PAT Secret is picked up after the refused token is invalidated."""
    secrets.put("team-a", "databricks-token", token="dapi-old\n")
    key = CacheKey("team-a", "pat:secret/databricks-token", "https://dbc-1.example")
    fetch = sources.pat_from_secret(secrets.read, "team-a", "databricks-token")
    cache = TokenCache()
    credential = CachedCredential(cache, key, fetch, kind="pat", namespace="team-a")
    assert await credential.token() == "dapi-old"
    secrets.put("team-a", "databricks-token", token="dapi-new")
    assert await credential.token() == "dapi-old"
    credential.invalidate("dapi-old")
    assert await credential.token() == "dapi-new"
    assert secrets.reads == 2


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"other": "x"}, "has no key 'token'"),
        ({"token": " \n"}, "has an empty key 'token'"),
    ],
)
async def test_a_pat_secret_without_its_key_is_unavailable(
    secrets: FakeSecrets, values: dict[str, str], problem: str
) -> None:
    """The error names the namespace, the Secret and the key."""
    secrets.put("team-a", "databricks-token", **values)
    fetch = sources.pat_from_secret(secrets.read, "team-a", "databricks-token")
    with pytest.raises(CredentialUnavailable, match=problem) as raised:
        await fetch()
    assert "secret 'databricks-token' in namespace 'team-a'" in raised.value.message
    assert (raised.value.namespace, raised.value.source) == ("team-a", "secret/databricks-token")


async def test_a_pat_secret_that_is_not_text_is_unavailable() -> None:
    """Bytes that are not UTF-8 are refused rather than sent as a garbled token."""

    async def read(_namespace: str, _name: str) -> dict[str, bytes]:
        return {"token": b"\xff\xfe"}

    with pytest.raises(CredentialUnavailable, match="non-UTF-8 key 'token'"):
        await sources.pat_from_secret(read, "team-a", "databricks-token")()


# --- OAuth M2M ------------------------------------------------------------------------------


async def test_oauth_m2m_tokens_are_accepted_by_the_workspace(
    session: aiohttp.ClientSession, databricks_emulator: DatabricksEmulator
) -> None:
    """Client id and secret, traded at the discovered endpoint, give a working token."""
    emulator = databricks_emulator
    fetch = sources.oauth_m2m(
        session, emulator.url, emulator.client_id, emulator.client_secret, namespace="team-a"
    )
    token = await fetch()
    assert token.expires_at is not None
    assert await workspace_status(session, emulator, token.value) == 200


async def test_a_rotated_oauth_secret_is_used_after_a_refusal(
    session: aiohttp.ClientSession,
    databricks_emulator: DatabricksEmulator,
    secrets: FakeSecrets,
) -> None:
    """After a 401/403 invalidates the token, the next fetch re-reads the rotated Secret."""
    emulator = databricks_emulator
    secrets.put(
        "team-a",
        "databricks-oauth",
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
    )
    key = CacheKey("team-a", "oauth-m2m:secret/databricks-oauth", emulator.url)
    fetch = sources.oauth_m2m_from_secret(
        session, emulator.url, secrets.read, "team-a", "databricks-oauth", retry=QUICK
    )
    cache = TokenCache()
    credential = CachedCredential(cache, key, fetch, kind="oauth-m2m", namespace="team-a")
    first = await credential.token()

    emulator.server.identity.rotate_secret(emulator.client_id, NEW_SECRET)
    emulator.server.identity.revoke_token(first)
    secrets.put(
        "team-a", "databricks-oauth", client_id=emulator.client_id, client_secret=NEW_SECRET
    )
    assert await workspace_status(session, emulator, first) == 403
    credential.invalidate(first)

    second = await credential.token()
    assert second != first
    assert await workspace_status(session, emulator, second) == 200
    await cache.aclose()


async def test_a_wrong_oauth_secret_is_refused_by_the_token_endpoint(
    session: aiohttp.ClientSession, databricks_emulator: DatabricksEmulator
) -> None:
    """invalid_client surfaces as a permanent TokenEndpointError for the namespace."""
    emulator = databricks_emulator
    fetch = sources.oauth_m2m(
        session, emulator.url, emulator.client_id, NEW_SECRET, namespace="team-a", retry=QUICK
    )
    with pytest.raises(TokenEndpointError) as raised:
        await fetch()
    assert (raised.value.error_code, raised.value.http_status) == ("invalid_client", 401)
    assert raised.value.namespace == "team-a"
    assert not raised.value.transient


async def test_an_oauth_secret_missing_its_client_secret_is_unavailable(
    session: aiohttp.ClientSession, secrets: FakeSecrets
) -> None:
    """Both keys are required; the error names the one that is missing."""
    secrets.put("team-a", "databricks-oauth", client_id="sp-1")
    fetch = sources.oauth_m2m_from_secret(
        session, "https://dbc-1.example", secrets.read, "team-a", "databricks-oauth"
    )
    with pytest.raises(CredentialUnavailable, match="has no key 'client_secret'"):
        await fetch()


# --- token files ----------------------------------------------------------------------------


async def test_a_token_file_is_read_again_after_the_kubelet_replaces_it(tmp_path: Path) -> None:
    """Each call reads the file, so a rotated token is seen at once; whitespace is stripped."""
    path = tmp_path / "token"
    path.write_text("jwt-one\n")
    read = sources.token_file(path)
    assert await read() == "jwt-one"
    replacement = tmp_path / "token.new"
    replacement.write_text("jwt-two")
    os.replace(replacement, path)
    assert await read() == "jwt-two"


@pytest.mark.parametrize(("content", "problem"), [(None, "does not exist"), ("  \n", "is empty")])
async def test_a_missing_or_empty_token_file_is_unavailable(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    """The error names the file and what is wrong with it."""
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CredentialUnavailable, match=problem) as raised:
        await sources.token_file(path, namespace="team-a")()
    assert str(path) in raised.value.message
    assert raised.value.namespace == "team-a"
