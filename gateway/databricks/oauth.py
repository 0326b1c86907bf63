"""OAuth token endpoints: discovery, and the grants that yield a token, through one client.

``TokenClient`` is handed the app's session and asks every grant lakegate needs:
``client_credentials`` (OAuth M2M at a workspace, reference §3), ``exchange`` (RFC 8693 token
exchange for OIDC federation, §4.1) and ``entra`` (client credentials at Entra ID for Azure
Databricks, §5, proven by a client secret or a federated JWT). Each is one form POST through
``request``, retried under a declared policy when the endpoint is briefly unable (429, 5xx,
timeouts, dropped connections), and parsed by the pure ``parse_token_response``
(``token_response``). A workspace's token endpoint is discovered once per host, whatever its
spelling, and kept (``discovery``; single flight: a cold burst costs one discovery GET).
An exchange looks at its subject first (``subject``): a JWT the workspace issued is used as
is, and what is not a JWT is refused before anything is sent.

Errors are ``TokenEndpointError`` (an ``IdentityError``: the namespace's identity cannot be
had), ``transient`` when trying again later may help. Secrets are sent, never logged.
"""

from __future__ import annotations

import base64
import copy
import math
import time
from collections.abc import Callable, Mapping
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDictProxy

from gateway.databricks import subject
from gateway.databricks.auth import AccessToken
from gateway.databricks.discovery import (
    DEFAULT_TIMEOUT,
    DEFAULT_TOKEN_PATH,
    DISCOVERY_PATH,
    discover,
    host_key,
)
from gateway.databricks.retries import RetryPolicy, retry_after_of
from gateway.databricks.token_response import fallback_expiry, parse_token_response
from gateway.databricks.wire import parse_retry_after
from gateway.errors import IdentityMisconfigured, TokenEndpointError
from gateway.logs import get_logger
from gateway.secrets_registry import remember
from gateway.singleflight import TtlCache

log = get_logger(__name__)

DEFAULT_SCOPE = "all-apis"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (a URN)
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 (a URN)
# Token endpoints answer in well under a second; the go SDK allows a minute of retries.
DEFAULT_TOKEN_RETRY = RetryPolicy(deadline=60.0, initial=0.5, maximum=10.0)
# A standard path used because discovery kept failing is asked about again after this long.
UNSETTLED_ENDPOINT_SECONDS = 60.0
# Workspaces are allow-listed, so the hosts whose endpoint is discovered are few.
MAX_DISCOVERED_HOSTS = 1024
# The Azure Databricks application id, the same in every Azure cloud.
AZURE_DATABRICKS_RESOURCE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
AZURE_DATABRICKS_SCOPE = f"{AZURE_DATABRICKS_RESOURCE}/.default"
# Azure Resource Manager in the public cloud (Gov: management.core.usgovcloudapi.net, China:
# management.core.chinacloudapi.cn); its app id URI ends in a slash, so its scope has two.
AZURE_MANAGEMENT_RESOURCE = "https://management.core.windows.net/"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

Clock = Callable[[], float]

__all__ = [
    "AZURE_DATABRICKS_SCOPE",
    "AZURE_MANAGEMENT_RESOURCE",
    "DEFAULT_SCOPE",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOKEN_PATH",
    "DISCOVERY_PATH",
    "TokenClient",
    "basic_authorization",
    "entra_token_endpoint",
    "jwt_assertion",
    "mask_client_id",
    "parse_token_response",
]


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
        self._entra_scope = AZURE_DATABRICKS_SCOPE
        # Token endpoints configured up front, by host; the rest are discovered.
        self._configured = {host_key(host): url for host, url in (endpoints or {}).items()}
        # Every resolution builds new credentials; keeping the discovered endpoint spares
        # each of them (every cold namespace, every refresh) the discovery GET.
        self._discovered: TtlCache[str, str] = TtlCache(
            MAX_DISCOVERED_HOSTS, name="oauth-discovery"
        )

    def with_entra_scope(self, scope: str) -> TokenClient:
        """This client (its session, retries and discovered endpoints), asking Entra for
        ``scope`` by default: the Azure management token an Entra service principal sends
        beside its Databricks token is the same grant for another resource."""
        twin = copy.copy(self)
        twin._entra_scope = scope
        return twin

    async def endpoint(self, host: str) -> str:
        """The host's token endpoint: the configured one, or the one discovery gives."""
        host = host_key(host)
        configured = self._configured.get(host)
        if configured is not None:
            return configured

        async def load() -> tuple[str, float]:
            found = await discover(
                self._session, host, request_timeout=self._timeout, retry=self._retry
            )
            return found.endpoint, math.inf if found.settled else UNSETTLED_ENDPOINT_SECONDS

        return await self._discovered.get(host, load)

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
            client_id=client_id,
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
        principal's federation policies; without it the account-wide policies apply. The
        subject is looked at first: one that is not a JWT is refused unsent, and a JWT the
        workspace itself issued is already its token, used as it is until its ``exp``.
        """
        claims = subject.claims(subject_token)
        if claims is None:
            raise IdentityMisconfigured(
                f"namespace '{namespace}': the subject token for federation is "
                f"{subject.not_a_jwt(subject_token)}; federation needs an OIDC JWT (a "
                "projected ServiceAccount token); a PAT belongs in a 'pat' identity",
                namespace=namespace,
                source=source,
            )
        if subject.issued_by(claims, host):
            log.info("federation_subject_used_as_is", namespace=namespace, host=host_key(host))
            expires_at = subject.expiry(claims)
            now = self._clock()
            return AccessToken(subject_token, expires_at or fallback_expiry(subject_token, now))
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
        scope: str | None = None,
    ) -> AccessToken:
        """Client credentials at Entra ID for Azure Databricks (or, on a client made by
        ``with_entra_scope``, for that scope); ``proof`` authenticates the client in the form
        body (Entra takes no HTTP Basic): a client secret, or a JWT assertion
        (``jwt_assertion``)."""
        scope = scope or self._entra_scope
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
        client_id: str | None = None,
    ) -> AccessToken:
        """POST one grant to the token endpoint, retrying transient failures within the deadline.

        ``authorization`` is the client authentication header, if the grant has one;
        ``client_id`` the client it authenticates when the form does not name it. An endpoint
        that echoes the client id in its error gets it masked in ours (first 4 ... last 4):
        errors are logged, by the retries and the background refresh among others.
        """
        client = client_id or form.get("client_id")
        request_headers = {"Accept": "application/json"}
        if authorization is not None:
            request_headers["Authorization"] = authorization
        retrying = self._retry.token_endpoint(token_endpoint, retry_after=retry_after_of)

        async def attempt() -> AccessToken:
            # Expiry counts from before the request: a token is never trusted longer than it
            # lives.
            sent_at = self._clock()
            status, headers, text = await self._post(
                token_endpoint, form, request_headers, namespace=namespace, source=source
            )
            try:
                return parse_token_response(
                    status,
                    text,
                    endpoint=token_endpoint,
                    namespace=namespace,
                    source=source,
                    now=sent_at,
                    retry_after=parse_retry_after(headers),
                )
            except TokenEndpointError as exc:
                raise _client_id_masked(exc, client) from None

        token: AccessToken = await retrying(attempt)
        return token

    async def _post(
        self,
        token_endpoint: str,
        form: Mapping[str, str],
        headers: Mapping[str, str],
        *,
        namespace: str,
        source: str,
    ) -> tuple[int, CIMultiDictProxy[str], str]:
        """One POST of the form: the answer's status, headers and text; a failure to reach
        the endpoint is ours (transient), one to build the request is not."""
        try:
            async with self._session.post(
                token_endpoint,
                data=dict(form),
                headers=dict(headers),
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                return resp.status, resp.headers, (await resp.read()).decode("utf-8", "replace")
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

    async def aclose(self) -> None:
        """Cancel a discovery in flight, so none outlives the session."""
        await self._discovered.aclose()


def mask_client_id(value: str) -> str:
    """A client id as logs, errors and records show it: its first and last four characters."""
    value = value.strip()
    if len(value) <= 8:
        # Too short to show any of it without showing most of it.
        return "*" * len(value)
    return f"{value[:4]}...{value[-4:]}"


def _client_id_masked(exc: TokenEndpointError, client_id: str | None) -> TokenEndpointError:
    """``exc`` (just made from the endpoint's answer) with the client id masked in its text."""
    if client_id and client_id in exc.message:
        exc.message = exc.message.replace(client_id, mask_client_id(client_id))
        exc.args = (exc.message,)
    return exc


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
