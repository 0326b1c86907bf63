"""API keys: matched by their sha256 in constant time; salted ones checked off the loop."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gateway.callers.api_keys import ApiKeyAuthenticator, sha256_hex
from gateway.callers.types import Refused
from gateway.settings import ApiKeySettings

KEY = "lgk_unit_0123456789"


def _sha256_authenticator() -> ApiKeyAuthenticator:
    return ApiKeyAuthenticator(
        [ApiKeySettings(name="unit", sha256=sha256_hex(KEY), namespaces=("team-a",))]
    )


async def test_keys_match_by_sha256() -> None:
    """The configured sha256 admits its key, with the key's name and namespaces."""
    identity = await _sha256_authenticator().authenticate(KEY)
    assert identity.subject == "apikey:unit"
    assert identity.namespaces == frozenset({"team-a"})


@pytest.mark.parametrize("wrong", [KEY + "x", KEY[:-1], "", "k" * 600])
async def test_near_misses_empty_and_huge_keys_are_refused(wrong: str) -> None:
    """Only the exact key matches its sha256; empty and oversized keys are refused early."""
    with pytest.raises(Refused):
        await _sha256_authenticator().authenticate(wrong)


async def test_scrypt_keys_are_checked_off_the_loop_and_remembered() -> None:
    """A scrypt entry admits its key; the answer is cached so the second check is free."""
    key = "lgk_scrypt_key"
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(key.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    encoded = (
        f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    )
    authn = ApiKeyAuthenticator([ApiKeySettings(name="salty", hash=encoded)])
    assert (await authn.authenticate(key)).subject == "apikey:salty"
    assert (await authn.authenticate(key)).subject == "apikey:salty"
    with pytest.raises(Refused):
        await authn.authenticate("lgk_other")
