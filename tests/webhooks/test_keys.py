"""Signing keys come from the namespace's own Secret, the environment or the tenants file."""

from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr

from gateway.errors import CredentialUnavailable, LakegateError
from gateway.settings import SecretRef
from gateway.settings.webhooks import TenantWebhooks
from gateway.webhooks.keys import SigningKeys
from gateway.webhooks.signing import secret_key
from tests.support.kube import FakeKube

OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()
FROM_SECRET = TenantWebhooks(secret=SecretRef(name="lakegate-webhook"))


async def test_a_secret_in_the_namespace_holds_every_key_of_a_rotation() -> None:
    """Key `secret` of the namespace's Secret may list two secrets; it is read once per TTL."""
    kube = FakeKube()
    kube.put("team-a", "lakegate-webhook", secret=f"{NEW} {OLD}\n")
    keys = SigningKeys(kube.read_secret, {})
    assert await keys.keys("team-a", FROM_SECRET) == (secret_key(NEW), secret_key(OLD))
    await keys.keys("team-a", FROM_SECRET)
    assert kube.reads == [("team-a", "lakegate-webhook")]
    await keys.aclose()


async def test_only_the_namespaces_own_secret_is_read() -> None:
    """team-b's key is never read for team-a: a missing Secret fails closed."""
    kube = FakeKube()
    kube.put("team-b", "lakegate-webhook", secret=NEW)
    keys = SigningKeys(kube.read_secret, {})
    with pytest.raises(LakegateError):
        await keys.keys("team-a", FROM_SECRET)
    assert kube.reads == [("team-a", "lakegate-webhook")]
    await keys.aclose()


@pytest.mark.parametrize("value", [None, "not-a-secret", ""])
async def test_a_missing_or_malformed_key_fails_closed_without_echoing_it(
    value: str | None,
) -> None:
    """No key `secret`, or one that is not whsec_ base64, is CredentialUnavailable."""
    kube = FakeKube()
    kube.put("team-a", "lakegate-webhook", **({} if value is None else {"secret": value}))
    keys = SigningKeys(kube.read_secret, {})
    with pytest.raises(CredentialUnavailable) as info:
        await keys.keys("team-a", FROM_SECRET)
    assert "not-a-secret" not in str(info.value)
    await keys.aclose()


async def test_environment_and_inline_secrets() -> None:
    """secret_env reads the gateway's environment; secret_value is the tenants file's."""
    keys = SigningKeys(None, {"HOOK_SECRET": OLD})
    env = TenantWebhooks(secret_env="HOOK_SECRET")
    assert await keys.keys("team-a", env) == (secret_key(OLD),)
    inline = TenantWebhooks(secret_value=SecretStr(NEW))
    assert await keys.keys("team-a", inline) == (secret_key(NEW),)
    with pytest.raises(CredentialUnavailable, match="environment UNSET"):
        await keys.keys("team-a", TenantWebhooks(secret_env="UNSET"))
    with pytest.raises(CredentialUnavailable, match="needs Kubernetes"):
        await keys.keys("team-a", FROM_SECRET)
    await keys.aclose()
