"""OAuth token endpoints: discovery, and the grants that yield a token, through one client.

``TokenClient`` is handed the app's session and asks every grant lakegate needs:
``client_credentials`` (OAuth M2M at a workspace, reference §3), ``exchange`` (RFC 8693 token
exchange for OIDC federation, §4.1) and ``entra`` (client credentials at Entra ID for Azure
Databricks, §5, proven by a client secret or a federated JWT). Each is one form POST through
``request``, retried under a declared policy when the endpoint is briefly unable (429, 5xx,
timeouts, dropped connections), and parsed by the pure ``parse_token_response``. A workspace's
token endpoint is discovered once per host and kept (single flight: a cold burst costs one
discovery GET).

Errors are ``TokenEndpointError`` (an ``IdentityError``: the namespace's identity cannot be
had), ``transient`` when trying again later may help. Secrets are sent, never logged.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from gateway.databricks.auth import AccessToken
from gateway.databricks.retries import RetryPolicy, retry_after_of
from gateway.databricks.wire import parse_retry_after
from gateway.errors import TokenEndpointError
from gateway.logs import get_logger, upstream_text
from gateway.secrets_registry import remember
from gateway.singleflight import TtlCache

log = get_logger(__name__)

DISCOVERY_PATH = "/oidc/.well-known/oauth-authorization-server"
DEFAULT_TOKEN_PATH = "/oidc/v1/token"  # noqa: S105 (a path, not a credential)
DEFAULT_SCOPE = "all-apis"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (a URN)
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 (a URN)
# Token endpoints answer in well under a second; the go SDK allows a minute of retries.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10)
DEFAULT_TOKEN_RETRY = RetryPolicy(deadline=60.0, initial=0.5, maximum=10.0)
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Workspaces are allow-listed, so the hosts whose endpoint is discovered are few.
MAX_DISCOVERED_HOSTS = 1024
# The Azure Databricks application id, the same in every Azure cloud.
AZURE_DATABRICKS_RESOURCE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
AZURE_DATABRICKS_SCOPE = f"{AZURE_DATABRICKS_RESOURCE}/.default"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

Clock = Callable[[], float]


async def discover_token_endpoint(
    session: aiohttp.ClientSession,
    host: str,
    *,
    request_timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
) -> str:
    """The workspace's ``token_endpoint`` from OIDC discovery; ``{host}/oidc/v1/token`` if not.

    Discovery failing is only a warning: every workspace serves the standard path. An
    endpoint on another origin is refused, so a client secret only ever goes to the
    allow-listed workspace host.
    """
    host = host.rstrip("/")
    fallback = host + DEFAULT_TOKEN_PATH
    try:
        async with session.get(
            host + DISCOVERY_PATH,
            headers={"Accept": "application/json"},
            timeout=request_timeout,
            allow_redirects=False,
        ) as resp:
            status = resp.status
            raw = await resp.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("oauth_discovery_failed", host=host, error=type(exc).__name__)
        return fallback
    endpoint = _discovered_endpoint(status, raw)
    if endpoint is None:
        log.warning("oauth_discovery_failed", host=host, http_status=status)
        return fallback
    if not _same_origin(endpoint, host):
        log.warning("oauth_discovery_foreign_endpoint", host=host, token_endpoint=endpoint)
        return fallback
    return endpoint


class TokenClient:
    """The grants of every identity kind, over the session the app owns (never its own)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        retry: RetryPolicy = DEFAULT_TOKEN_RETRY,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        clock: Clock = time.time,
        endpoints: Mapping[str, str] | None = None,
    ) -> None:
        self._session = session
        self._retry = retry
        self._timeout = timeout
        self._clock = clock
        # Token endpoints configured up front, by host; the rest are discovered.
        self._configured = {host.rstrip("/"): url for host, url in (endpoints or {}).items()}
        # Every resolution builds new credentials; keeping the discovered endpoint spares
        # each of them (every cold namespace, every refresh) the discovery GET.
        self._discovered: TtlCache[str, str] = TtlCache(
            MAX_DISCOVERED_HOSTS, name="oauth-discovery"
        )

    async def endpoint(self, host: str) -> str:
        """The host's token endpoint: the configured one, or the one discovery gives."""
        host = host.rstrip("/")
        configured = self._configured.get(host)
        if configured is not None:
            return configured

        async def discover() -> tuple[str, float]:
            url = await discover_token_endpoint(self._session, host, request_timeout=self._timeout)
            return url, math.inf

        return await self._discovered.get(host, discover)

    async def client_credentials(
        self,
        host: str,
        client_id: str,
        client_secret: str,
        *,
        namespace: str,
        scope: str = DEFAULT_SCOPE,
        source: str = "oauth-m2m",
    ) -> AccessToken:
        """The OAuth M2M grant: client id and secret in HTTP Basic auth, the rest as a form."""
        return await self.request(
            await self.endpoint(host),
            {"grant_type": "client_credentials", "scope": scope},
            authorization=basic_authorization(client_id, client_secret),
            namespace=namespace,
            source=source,
        )

    async def exchange(
        self,
        host: str,
        subject_token: str,
        *,
        client_id: str | None,
        namespace: str,
        scope: str = DEFAULT_SCOPE,
        source: str = "federation",
    ) -> AccessToken:
        """RFC 8693 token exchange: a JWT from a trusted issuer for a Databricks token.

        No client authentication: the JWT is the proof. ``client_id`` selects that service
        principal's federation policies; without it the account-wide policies apply.
        """
        form = {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": subject_token,
            "subject_token_type": JWT_TOKEN_TYPE,
            "scope": scope,
        }
        if client_id:
            form["client_id"] = client_id
        return await self.request(
            await self.endpoint(host), form, authorization=None, namespace=namespace, source=source
        )

    async def entra(
        self,
        authority: str,
        tenant_id: str,
        client_id: str,
        proof: Mapping[str, str],
        *,
        namespace: str,
        source: str,
        scope: str = AZURE_DATABRICKS_SCOPE,
    ) -> AccessToken:
        """Client credentials at Entra ID for Azure Databricks; ``proof`` authenticates the
        client in the form body (Entra takes no HTTP Basic): a client secret, or a JWT
        assertion (``jwt_assertion``)."""
        form = {"grant_type": "client_credentials", "client_id": client_id, **proof, "scope": scope}
        return await self.request(
            entra_token_endpoint(authority, tenant_id),
            form,
            authorization=None,
            namespace=namespace,
            source=source,
        )

    async def request(
        self,
        token_endpoint: str,
        form: Mapping[str, str],
        *,
        authorization: str | None,
        namespace: str,
        source: str,
    ) -> AccessToken:
        """POST one grant to the token endpoint, retrying transient failures within the deadline.

        ``authorization`` is the client authentication header, if the grant has one.
        """
        request_headers = {"Accept": "application/json"}
        if authorization is not None:
            request_headers["Authorization"] = authorization
        retrying = self._retry.token_endpoint(token_endpoint, retry_after=retry_after_of)

        async def attempt() -> AccessToken:
            # Expiry counts from before the request: a token is never trusted longer than it
            # lives.
            sent_at = self._clock()
            try:
                async with self._session.post(
                    token_endpoint,
                    data=dict(form),
                    headers=request_headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as resp:
                    status, headers = resp.status, resp.headers
                    text = (await resp.read()).decode("utf-8", "replace")
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TokenEndpointError(
                    f"token endpoint {token_endpoint} could not be reached: {type(exc).__name__}",
                    namespace=namespace,
                    source=source,
                    transient=True,
                ) from exc
            except Exception as exc:
                # A request aiohttp will not build (ValueError) will not build next time.
                raise TokenEndpointError(
                    f"token endpoint {token_endpoint}: the request could not be sent "
                    f"({type(exc).__name__})",
                    namespace=namespace,
                    source=source,
                ) from exc
            return parse_token_response(
                status,
                text,
                endpoint=token_endpoint,
                namespace=namespace,
                source=source,
                now=sent_at,
                retry_after=parse_retry_after(headers),
            )

        token: AccessToken = await retrying(attempt)
        return token

    async def aclose(self) -> None:
        """Cancel a discovery in flight, so none outlives the session."""
        await self._discovered.aclose()


def entra_token_endpoint(authority: str, tenant_id: str) -> str:
    """The v2.0 token endpoint of a tenant; the tenant is quoted so it stays one path segment."""
    return f"{authority.rstrip('/')}/{quote(tenant_id, safe='')}/oauth2/v2.0/token"


def jwt_assertion(assertion: str) -> dict[str, str]:
    """An Entra client proven by a federated JWT (workload identity) rather than a secret."""
    return {"client_assertion_type": JWT_BEARER_ASSERTION, "client_assertion": assertion}


def basic_authorization(client_id: str, client_secret: str) -> str:
    """HTTP Basic client authentication, as the Databricks SDKs send it (no form-encoding)."""
    remember(client_secret)
    pair = f"{client_id}:{client_secret}".encode()
    encoded = base64.b64encode(pair).decode("ascii")
    remember(encoded)
    return "Basic " + encoded


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
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
        raise malformed("no positive integer expires_in")
    return AccessToken(value=value, expires_at=now + expires_in)


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
        transient=status in _TRANSIENT_STATUSES,
        retry_after=retry_after,
    )


def _discovered_endpoint(status: int, raw: bytes) -> str | None:
    if status != 200:
        return None
    payload = _json_object(raw.decode("utf-8", "replace"))
    endpoint = payload.get("token_endpoint") if payload else None
    return endpoint if isinstance(endpoint, str) and endpoint else None


def _same_origin(url: str, host: str) -> bool:
    a, b = urlsplit(url), urlsplit(host)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
