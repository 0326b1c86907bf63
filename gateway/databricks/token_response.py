"""A token endpoint's answer, parsed: the ``AccessToken`` it grants or the error it means.

Pure, shared by every grant (Databricks' client credentials and token exchange, Entra's
client credentials). Reference §3: an answer carries ``access_token``, ``token_type`` and
``expires_in``; an answer without ``expires_in`` lives until its JWT's ``exp``, else an hour.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gateway.databricks import subject
from gateway.databricks.auth import AccessToken
from gateway.errors import TokenEndpointError
from gateway.logs import upstream_text
from gateway.secrets_registry import remember

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_LIFETIME_SECONDS = 3600.0


def parse_token_response(
    status: int,
    text: str,
    *,
    endpoint: str,
    namespace: str,
    source: str,
    now: float,
    retry_after: float | None = None,
) -> AccessToken:
    """A token endpoint's answer as an ``AccessToken``, or the ``TokenEndpointError`` it means.

    ``retry_after`` is the answer's Retry-After, carried by the error for the retry policy.
    """
    payload = _json_object(text)
    if status != 200:
        raise _oauth_error(
            status,
            payload,
            text,
            endpoint=endpoint,
            namespace=namespace,
            source=source,
            retry_after=retry_after,
        )

    def malformed(problem: str) -> TokenEndpointError:
        return TokenEndpointError(
            f"token endpoint {endpoint} answered 200 with {problem}",
            namespace=namespace,
            source=source,
            http_status=status,
        )

    if payload is None:
        raise malformed("a body that is not a JSON object")
    value = payload.get("access_token")
    if not isinstance(value, str) or not value:
        raise malformed("no access_token")
    remember(value)
    token_type = payload.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise malformed(f"token_type {token_type!r}, not Bearer")
    expires_in = payload.get("expires_in")
    if expires_in is None:
        # As databricks-sql-python does: the access token's own exp, else an hour.
        return AccessToken(value=value, expires_at=fallback_expiry(value, now))
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
        raise malformed("an expires_in that is not a positive integer")
    return AccessToken(value=value, expires_at=now + expires_in)


def fallback_expiry(token: str, now: float) -> float:
    """When a token without a stated lifetime stops working: its JWT ``exp``, else in an
    hour (the lifetime Databricks documents for its OAuth tokens)."""
    exp = subject.token_expiry(token)
    return exp if exp is not None else now + DEFAULT_LIFETIME_SECONDS


def _oauth_error(
    status: int,
    payload: Mapping[str, Any] | None,
    text: str,
    *,
    endpoint: str,
    namespace: str,
    source: str,
    retry_after: float | None,
) -> TokenEndpointError:
    # RFC 6749 §5.2 names them error/error_description; some Databricks paths use Okta-style
    # errorCode/errorSummary, which the SDKs read too.
    code = description = None
    if payload is not None:
        code = _str(payload.get("error")) or _str(payload.get("errorCode"))
        description = _str(payload.get("error_description")) or _str(payload.get("errorSummary"))
        # Entra appends trace and correlation ids on new lines (CRLF); keep messages one line.
        description = upstream_text(description) if description else None
    if description is None and payload is None:
        description = upstream_text(text) or None
    code = upstream_text(code, limit=80) if code else None
    detail = ": ".join(part for part in (code, description) if part) or f"HTTP {status}"
    return TokenEndpointError(
        f"token endpoint {endpoint} refused the request ({status}): {detail}",
        namespace=namespace,
        source=source,
        http_status=status,
        error_code=code,
        transient=status in TRANSIENT_STATUSES,
        retry_after=retry_after,
    )


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
