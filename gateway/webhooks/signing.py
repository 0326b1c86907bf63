"""Standard Webhooks signatures, pure: headers for a body, one signature per secret.

A secret is written ``whsec_`` + base64 of its raw bytes; the HMAC-SHA256 key is the decoded
part. The signed content is ``{webhook-id}.{webhook-timestamp}.{body}`` over the exact bytes
sent, and ``webhook-signature`` lists ``v1,<base64>`` once per secret, space-separated, so a
receiver keeps verifying while a secret is rotated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's marker, not a secret
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ValueError (naming no part of it) when malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret is written whsec_ followed by base64")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret's part after whsec_ is not base64") from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {len(key)}"
        )
    return key


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body`` under ``key``."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(
    keys: Sequence[bytes], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers (and the JSON content type) for one attempt."""
    if not keys:
        raise ValueError("signing needs at least one secret")
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(key, webhook_id, timestamp, body) for key in keys),
    }


def webhook_id(outbox_id: int, installation_id: str) -> str:
    """The stable id of an event: the same on every try, unique across installations."""
    return f"msg_{installation_id[:16]}_{outbox_id}"


def parse_secrets(text: str) -> tuple[bytes, ...]:
    """The keys of one or more ``whsec_`` secrets separated by whitespace (a rotation)."""
    keys = tuple(secret_key(part) for part in text.split())
    if not keys:
        raise ValueError("a webhook secret is empty")
    return keys


def verify(
    keys: Sequence[bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: int,
    tolerance: int = 300,
) -> bool:
    """Whether a delivery is signed by one of ``keys`` and its timestamp is within tolerance.

    What a receiver does (the demo's does this); comparisons are constant-time.
    """
    wid, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp", "")
    if not wid or not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    expected = [sign(key, wid, int(stamp), body) for key in keys]
    given = headers.get("webhook-signature", "").split()
    return any(hmac.compare_digest(e, g) for e in expected for g in given)
