"""What a token is, read without verifying it: the claims of a JWT, or why it is not one.

Federation looks at a subject token before it is exchanged (databricks-sql-python's token
federation): a JWT that the workspace itself issued is already a Databricks token and is used
as is; something that is not a JWT (a PAT left in a token file) is never sent as a
``subject_token``. Nothing here trusts a claim for authorisation: the workspace verifies the
signature when the token is used or exchanged; the claims only pick the path and the expiry.
Pure: no I/O, and no message quotes the token.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from gateway.settings.base import same_host

# Databricks' PAT prefixes: a workspace PAT (dapi), an OAuth secret (dose).
_KNOWN_PREFIXES = {
    "dapi": "a Databricks personal access token",
    "dose": "a Databricks OAuth secret",
}


def claims(token: str) -> dict[str, Any] | None:
    """The payload of a signed JWT (header.payload.signature, both base64url JSON objects);
    None when ``token`` is not one."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return None
    header, payload = _json_part(parts[0]), _json_part(parts[1])
    if header is None or payload is None or not isinstance(header.get("alg"), str):
        return None
    return payload


def not_a_jwt(token: str) -> str:
    """What ``token`` looks like, for a refusal that must not quote it."""
    for prefix, what in _KNOWN_PREFIXES.items():
        if token.startswith(prefix):
            return f"{what} ({prefix}…, {len(token)} characters), not a JWT"
    dots = token.count(".")
    if dots == 4:
        return "an encrypted JWT (JWE, five parts), not a signed JWT"
    if dots == 2:
        return "three dot-separated parts that are not base64url JSON, not a JWT"
    return f"an opaque token of {len(token)} characters without the three parts of a JWT"


def issued_by(payload: dict[str, Any], host: str) -> bool:
    """Whether the JWT's ``iss`` is ``host`` (any path, scheme optional, case-insensitive)."""
    issuer = payload.get("iss")
    return isinstance(issuer, str) and bool(issuer) and same_host(issuer, host)


def expiry(payload: dict[str, Any]) -> float | None:
    """The JWT's ``exp`` (epoch seconds), when it has a usable one."""
    exp = payload.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float) or exp <= 0:
        return None
    return float(exp)


def token_expiry(token: str) -> float | None:
    """The ``exp`` of ``token`` when it is a JWT that has one."""
    payload = claims(token)
    return None if payload is None else expiry(payload)


def _json_part(part: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    return value if isinstance(value, dict) else None
