"""Standard Webhooks signatures, checked by the independent ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway.webhooks.signing import secret_key, webhook_headers, webhook_id

SECRET_A = "whsec_" + base64.b64encode(b"a" * 32).decode()
SECRET_B = "whsec_" + base64.b64encode(b"b" * 24).decode()


@given(body=st.binary(max_size=512).map(lambda raw: raw.hex().encode()), msg=st.integers(1))
def test_the_package_verifies_what_we_sign(body: bytes, msg: int) -> None:
    """Any body signed with a secret verifies with the standardwebhooks package."""
    now = int(time.time())
    headers = webhook_headers([secret_key(SECRET_A)], webhook_id(msg, "f" * 32), now, body)
    assert Webhook(SECRET_A).verify(body, headers, json_parse=False) is None


def test_every_secret_of_a_rotation_signs() -> None:
    """During a rotation each secret gets its own signature, so either verifies alone."""
    body, now = b'{"type":"run.completed"}', int(time.time())
    headers = webhook_headers([secret_key(SECRET_A), secret_key(SECRET_B)], "msg_1", now, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET_A, SECRET_B):
        assert Webhook(secret).verify(body, headers) == {"type": "run.completed"}


def test_a_changed_body_does_not_verify() -> None:
    """A body altered after signing is refused by the verifier."""
    now = int(time.time())
    headers = webhook_headers([secret_key(SECRET_A)], "msg_1", now, b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET_A).verify(b'{"a":2}', headers)


def test_another_secret_does_not_verify() -> None:
    """A signature made with one secret does not verify under another."""
    now = int(time.time())
    headers = webhook_headers([secret_key(SECRET_A)], "msg_1", now, b"{}")
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET_B).verify(b"{}", headers)


@pytest.mark.parametrize(
    ("secret", "cause"),
    [
        ("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "whsec_"),
        ("whsec_not base64!", "not base64"),
        ("whsec_" + base64.b64encode(b"x" * 8).decode(), "not 8"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "not 65"),
    ],
)
def test_malformed_secrets_are_refused_without_echoing_them(secret: str, cause: str) -> None:
    """A malformed secret is a ValueError saying why, and never quoting the secret."""
    with pytest.raises(ValueError, match=cause) as info:
        secret_key(secret)
    assert secret[6:] not in str(info.value)


def test_signing_needs_a_secret() -> None:
    """No secret at all is a caller bug, not an unsigned delivery."""
    with pytest.raises(ValueError, match="at least one"):
        webhook_headers([], "msg_1", 0, b"{}")


def test_the_webhook_id_is_stable_and_distinct() -> None:
    """The id depends only on the outbox row and the installation."""
    assert webhook_id(7, "ab" * 16) == webhook_id(7, "ab" * 16)
    assert webhook_id(7, "ab" * 16) != webhook_id(8, "ab" * 16)
    assert webhook_id(7, "ab" * 16) != webhook_id(7, "cd" * 16)


def test_our_receiver_side_check_agrees_with_the_package() -> None:
    """verify() accepts what we sign, refuses another body, key or a stale timestamp."""
    from gateway.webhooks.signing import verify

    key, now, body = secret_key(SECRET_A), int(time.time()), b'{"a":1}'
    headers = webhook_headers([key], "msg_1", now, body)
    assert verify([key], headers, body, now=now)
    assert not verify([key], headers, b'{"a":2}', now=now)
    assert not verify([secret_key(SECRET_B)], headers, body, now=now)
    assert not verify([key], headers, body, now=now + 301)
