"""API keys over real sockets: stored as hashes, bound to namespaces, sent two ways."""

from __future__ import annotations

import secrets

import aiohttp
from multidict import CIMultiDict

from tests.callers.conftest import CallersStack, bearer, sha256_hex, submit_body

KEY = "lgk_" + secrets.token_urlsafe(32)
SELECTOR_KEY = "lgk_" + secrets.token_urlsafe(32)


def _callers() -> dict[str, object]:
    return {
        "methods": ["api_key"],
        "api_keys": [
            {"name": "reports", "sha256": sha256_hex(KEY), "namespaces": ["team-01"]},
            {
                "name": "batch",
                "sha256": sha256_hex(SELECTOR_KEY),
                "namespace_selector": "tier=batch",
            },
        ],
    }


async def _status(
    http: aiohttp.ClientSession, url: str, namespace: str, headers: dict[str, str]
) -> int:
    async with http.get(f"{url}/v1/namespaces/{namespace}/runs", headers=headers) as response:
        return response.status


async def test_a_key_acts_for_its_bound_namespace_only(
    callers_stack: CallersStack, http: aiohttp.ClientSession
) -> None:
    """The key bound to team-01 lists there (200) and is refused team-00 (403)."""
    stack = await callers_stack(_callers())
    assert await _status(http, stack.url, "team-01", bearer(KEY)) == 200
    assert await _status(http, stack.url, "team-00", bearer(KEY)) == 403


async def test_a_key_may_be_sent_as_x_api_key(
    callers_stack: CallersStack, http: aiohttp.ClientSession
) -> None:
    """X-API-Key works as Authorization: Bearer does."""
    stack = await callers_stack(_callers())
    assert await _status(http, stack.url, "team-01", {"X-API-Key": KEY}) == 200


async def test_an_unknown_key_is_unauthenticated(
    callers_stack: CallersStack, http: aiohttp.ClientSession
) -> None:
    """A key that is not configured gets 401, in either header."""
    stack = await callers_stack(_callers())
    wrong = KEY[:-1] + ("A" if KEY[-1] != "A" else "B")
    assert await _status(http, stack.url, "team-01", bearer(wrong)) == 401
    assert await _status(http, stack.url, "team-01", {"X-API-Key": wrong}) == 401


async def test_no_credential_is_401_and_two_credentials_a_400_naming_the_header(
    callers_stack: CallersStack, http: aiohttp.ClientSession
) -> None:
    """No credential is 401; two different ones, or a repeated Authorization header (even
    holding a valid key), are a 400 problem naming the header rather than a guess."""
    stack = await callers_stack(_callers())
    assert await _status(http, stack.url, "team-01", {}) == 401
    both = {**bearer(KEY), "X-API-Key": SELECTOR_KEY}
    repeated = CIMultiDict([("Authorization", f"Bearer {KEY}"), ("Authorization", "Bearer x")])
    for headers, named in ((both, "header X-API-Key"), (repeated, "header Authorization")):
        url = f"{stack.url}/v1/namespaces/team-01/runs"
        async with http.get(url, headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["field"] == named


async def test_a_key_bound_by_label_selector_follows_namespace_labels(
    callers_stack: CallersStack, http: aiohttp.ClientSession
) -> None:
    """A key bound to tier=batch acts in even (batch) namespaces only, submissions included."""
    stack = await callers_stack(_callers())
    headers = bearer(SELECTOR_KEY)
    assert await _status(http, stack.url, "team-00", headers) == 200
    assert await _status(http, stack.url, "team-01", headers) == 403
    assert await _status(http, stack.url, "no-such-namespace", headers) == 403
    url = f"{stack.url}/v1/namespaces/team-02/runs"
    async with http.post(url, json=submit_body("batch"), headers=headers) as response:
        assert response.status == 201


async def test_a_salted_hash_is_accepted(
    callers_stack: CallersStack, http: aiohttp.ClientSession
) -> None:
    """A key configured as pbkdf2_sha256 authenticates like a sha256 one."""
    import base64
    import hashlib

    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", KEY.encode(), salt, 100_000)
    encoded = "$".join(
        [
            "pbkdf2_sha256",
            "100000",
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        ]
    )
    stack = await callers_stack(
        {
            "methods": ["api_key"],
            "api_keys": [{"name": "salted", "hash": encoded, "namespaces": ["team-03"]}],
        },
        kubernetes=False,
    )
    assert await _status(http, stack.url, "team-03", bearer(KEY)) == 200
    assert await _status(http, stack.url, "team-02", bearer(KEY)) == 403
