"""Where events go: an allowed callback_url, else the namespace's url, else nowhere."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from gateway.errors import InvalidRequest
from gateway.settings import Settings
from gateway.settings.webhooks import TenantWebhooks
from gateway.webhooks.destination import check_callback_url, destination
from gateway.webhooks.guard import Guard

SECRET = SecretStr("whsec_" + "A" * 32)
POLICY = TenantWebhooks(
    url="https://scheduler.example/default",
    allowed_url_prefixes=("https://scheduler.example/", "https://other.example/hooks/"),
    secret_value=SECRET,
)
STRICT = Guard()


def _payload(callback: str | None) -> dict[str, object]:
    return {"type": "run.completed", "data": {"callback_url": callback}}


@pytest.mark.parametrize(
    ("callback", "policy", "expected"),
    [
        ("https://other.example/hooks/7", POLICY, "https://other.example/hooks/7"),
        ("https://evil.example/x", POLICY, "https://scheduler.example/default"),
        (None, POLICY, "https://scheduler.example/default"),
        (None, TenantWebhooks(), None),
        ("https://other.example/hooks/7", TenantWebhooks(), None),
    ],
)
def test_destination(callback: str | None, policy: TenantWebhooks, expected: str | None) -> None:
    """The callback_url wins only while a prefix allows it; then the default, then nowhere."""
    assert destination(_payload(callback), policy, STRICT) == expected


def test_a_callback_url_off_the_prefixes_is_refused_naming_them() -> None:
    """The refusal names the namespace and every allowed prefix, and how to fix it."""
    with pytest.raises(InvalidRequest) as info:
        check_callback_url("team-a", "https://evil.example/x", POLICY, STRICT)
    message = str(info.value)
    assert "team-a" in message
    assert "https://scheduler.example/, https://other.example/hooks/" in message
    assert info.value.field == "callback_url"


def test_a_namespace_without_prefixes_refuses_every_callback_url() -> None:
    """With no prefixes configured, a callback_url is refused rather than ignored."""
    with pytest.raises(InvalidRequest, match=r"prefixes \(none\)"):
        check_callback_url("team-a", "https://x.example/", TenantWebhooks(), STRICT)


def test_an_allowed_prefix_to_a_forbidden_address_is_refused_by_rule() -> None:
    """A prefix does not exempt an address the guard forbids."""
    policy = TenantWebhooks(allowed_url_prefixes=("https://169.254.169.254/",), secret_value=SECRET)
    with pytest.raises(InvalidRequest, match="rule link-local"):
        check_callback_url("team-a", "https://169.254.169.254/", policy, STRICT)


@pytest.mark.parametrize(
    ("block", "cause"),
    [
        ({"url": "https://a.example/x"}, "deliveries are signed"),
        ({"url": "https://a.example/x", "secret_env": "A", "secret_value": "whsec_x"}, "at most"),
        ({"allowed_url_prefixes": ["https://a.example"], "secret_env": "A"}, "end its host"),
        ({"url": "https://u:p@a.example/", "secret_env": "A"}, "credentials"),
        ({"url": "https://a.example/", "secret_value": "whsec_short"}, "base64|bytes"),
    ],
)
def test_tenant_webhook_blocks_are_checked(block: dict[str, object], cause: str) -> None:
    """A webhook block that cannot act as written is refused at start-up."""
    with pytest.raises(ValidationError, match=cause):
        TenantWebhooks.model_validate(block)


@pytest.mark.parametrize(
    ("gateway", "url", "cause"),
    [
        ({}, "http://127.0.0.1:9/x", "plain http"),
        ({"allow_http": True}, "http://127.0.0.1:9/x", "loopback"),
        ({"allow_http": True, "allow_networks": ["127.0.0.0/8"]}, "http://127.0.0.1:9/x", None),
    ],
)
def test_the_guard_applies_to_the_tenants_file(
    gateway: dict[str, object], url: str, cause: str | None
) -> None:
    """A namespace url the guard forbids fails start-up, naming the key; allowed ones pass."""
    raw = {
        "webhooks": gateway,
        "tenants": {"namespaces": {"team-a": {"webhooks": {"url": url, "secret_env": "S"}}}},
    }
    if cause is None:
        Settings.model_validate(raw)
        return
    with pytest.raises(ValidationError, match=f"tenants.namespaces.team-a.webhooks: .*{cause}"):
        Settings.model_validate(raw)
