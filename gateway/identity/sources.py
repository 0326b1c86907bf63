"""Where a namespace's tokens come from: one fetch function per credential source.

Each builder returns what the ``TokenCache`` calls on a miss or a refresh: an async function
that yields an ``AccessToken`` (or, for subject tokens, the JWT a token exchange presents).
Secrets and token files are read AT FETCH TIME, never when the function is built, so a rotated
Secret or a token file the kubelet replaced is picked up by the next fetch (after a 401 has
invalidated the cached token, or when it goes stale).

- ``pat``, ``pat_from_secret``: a personal access token; it never expires.
- ``oauth_m2m``, ``oauth_m2m_from_secret``: a service principal's OAuth client id and secret
  (reference §3).
- ``federated``: RFC 8693 token exchange of a subject JWT (§4.1); the JWT comes from
  ``token_file`` (a projected token) or ``minted_service_account_token`` (TokenRequest).
- Entra ID sources are in ``gateway.identity.sources_azure``.

Kubernetes is reached only through the injected ``read_secret`` and ``mint`` callables (the
kube edge's), so this module imports nothing of it. Fetch latency and failures are reported
by the cache, around every fetch, not here.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import aiohttp

from gateway.databricks import oauth
from gateway.databricks.auth import AccessToken
from gateway.databricks.retries import RetryPolicy
from gateway.errors import CredentialUnavailable
from gateway.identity.cache import CacheKey, Fetch, TokenCache

SubjectToken = Callable[[], Awaitable[str]]
ReadSecret = Callable[[str, str], Awaitable[Mapping[str, bytes]]]
# (namespace, service account, audiences, expiration seconds): the kube edge's TokenRequest.
Mint = Callable[[str, str, list[str], int], Awaitable[AccessToken]]
Clock = Callable[[], float]

SA_TOKEN_KIND = "sa-token"  # noqa: S105 (a metrics label, not a credential)
# Minted tokens are for the cluster's issuer, not for a workspace; their keys say so.
MINTED_HOST = "kubernetes"
# The API server refuses TokenRequests for less than ten minutes.
MIN_SA_TOKEN_SECONDS = 600


# --- personal access tokens -----------------------------------------------------------------


def pat(value: str, *, namespace: str = "", source: str | None = None) -> Fetch:
    """A PAT given as a value (settings, environment): the same token on every fetch."""
    if not value.strip():
        raise CredentialUnavailable(
            "the personal access token is empty", namespace=namespace, source=source
        )
    token = AccessToken(value.strip())

    async def fetch() -> AccessToken:
        return token

    return fetch


def pat_from_secret(
    read_secret: ReadSecret, namespace: str, secret_name: str, key: str = "token"
) -> Fetch:
    """A PAT in a Secret of the namespace, read again on every fetch (rotation)."""

    async def fetch() -> AccessToken:
        (value,) = await secret_values(read_secret, namespace, secret_name, (key,))
        return AccessToken(value)

    return fetch


async def secret_values(
    read_secret: ReadSecret, namespace: str, secret_name: str, keys: tuple[str, ...]
) -> tuple[str, ...]:
    """The named keys of a Secret as text; a missing, empty or non-UTF-8 key is refused."""
    data = await read_secret(namespace, secret_name)
    values: list[str] = []
    for key in keys:
        raw = data.get(key)

        def unavailable(problem: str, key: str = key) -> CredentialUnavailable:
            return CredentialUnavailable(
                f"secret '{secret_name}' in namespace '{namespace}' {problem} key '{key}'",
                namespace=namespace,
                source=f"secret/{secret_name}",
            )

        if raw is None:
            raise unavailable("has no")
        try:
            # Secrets made with `kubectl create secret --from-file` often end in a newline.
            value = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise unavailable("has a non-UTF-8") from exc
        if not value:
            raise unavailable("has an empty")
        values.append(value)
    return tuple(values)


# --- OAuth M2M ------------------------------------------------------------------------------


class TokenEndpoint:
    """A workspace's token endpoint: the configured one, or discovered once on first use."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        url: str | None = None,
        *,
        request_timeout: aiohttp.ClientTimeout = oauth.DEFAULT_TIMEOUT,
    ) -> None:
        self._session = session
        self.host = host.rstrip("/")
        self._url = url
        self._request_timeout = request_timeout

    async def url(self) -> str:
        if self._url is None:
            self._url = await oauth.discover_token_endpoint(
                self._session, self.host, request_timeout=self._request_timeout
            )
        return self._url


def oauth_m2m(
    session: aiohttp.ClientSession,
    host: str,
    client_id: str,
    client_secret: str,
    *,
    namespace: str = "",
    source: str | None = None,
    scope: str = oauth.DEFAULT_SCOPE,
    token_endpoint: str | None = None,
    retry: RetryPolicy = oauth.DEFAULT_TOKEN_RETRY,
    request_timeout: aiohttp.ClientTimeout = oauth.DEFAULT_TIMEOUT,
    clock: Clock = time.time,
    endpoint: TokenEndpoint | None = None,
) -> Fetch:
    """A service principal's client id and secret given as values, traded for tokens."""
    if not client_id or not client_secret:
        raise CredentialUnavailable(
            "OAuth M2M needs a client id and a client secret", namespace=namespace, source=source
        )

    async def credentials() -> tuple[str, str]:
        return client_id, client_secret

    return _client_credentials(
        session,
        endpoint or TokenEndpoint(session, host, token_endpoint, request_timeout=request_timeout),
        credentials,
        scope=scope,
        namespace=namespace,
        retry=retry,
        request_timeout=request_timeout,
        clock=clock,
    )


def oauth_m2m_from_secret(
    session: aiohttp.ClientSession,
    host: str,
    read_secret: ReadSecret,
    namespace: str,
    secret_name: str,
    *,
    scope: str = oauth.DEFAULT_SCOPE,
    token_endpoint: str | None = None,
    retry: RetryPolicy = oauth.DEFAULT_TOKEN_RETRY,
    request_timeout: aiohttp.ClientTimeout = oauth.DEFAULT_TIMEOUT,
    clock: Clock = time.time,
    endpoint: TokenEndpoint | None = None,
) -> Fetch:
    """OAuth M2M with the client id and secret read from a Secret (keys ``client_id`` and
    ``client_secret``) on every fetch, so a rotated secret is used from the next fetch on."""

    async def credentials() -> tuple[str, str]:
        client_id, client_secret = await secret_values(
            read_secret, namespace, secret_name, ("client_id", "client_secret")
        )
        return client_id, client_secret

    return _client_credentials(
        session,
        endpoint or TokenEndpoint(session, host, token_endpoint, request_timeout=request_timeout),
        credentials,
        scope=scope,
        namespace=namespace,
        retry=retry,
        request_timeout=request_timeout,
        clock=clock,
    )


def _client_credentials(
    session: aiohttp.ClientSession,
    endpoint: TokenEndpoint,
    credentials: Callable[[], Awaitable[tuple[str, str]]],
    *,
    scope: str,
    namespace: str,
    retry: RetryPolicy,
    request_timeout: aiohttp.ClientTimeout,
    clock: Clock,
) -> Fetch:
    """OAuth M2M at the workspace; ``credentials`` gives the client id and secret per fetch."""

    async def fetch() -> AccessToken:
        client_id, client_secret = await credentials()
        return await oauth.client_credentials(
            session,
            await endpoint.url(),
            client_id,
            client_secret,
            scope,
            namespace=namespace,
            retry=retry,
            request_timeout=request_timeout,
            clock=clock,
        )

    return fetch


# --- federation -----------------------------------------------------------------------------


def federated(
    session: aiohttp.ClientSession,
    host: str,
    subject_token: SubjectToken,
    *,
    client_id: str | None,
    namespace: str,
    source: str = "federation",
    scope: str = oauth.DEFAULT_SCOPE,
    token_endpoint: str | None = None,
    retry: RetryPolicy = oauth.DEFAULT_TOKEN_RETRY,
    request_timeout: aiohttp.ClientTimeout = oauth.DEFAULT_TIMEOUT,
    clock: Clock = time.time,
    endpoint: TokenEndpoint | None = None,
) -> Fetch:
    """A subject JWT, obtained afresh on every fetch, exchanged at the workspace.

    ``client_id`` names the service principal whose federation policies must accept the JWT
    (workload identity federation); without it the account-wide policies apply.
    """
    endpoint = endpoint or TokenEndpoint(
        session, host, token_endpoint, request_timeout=request_timeout
    )

    async def fetch() -> AccessToken:
        jwt = await subject_token()
        return await oauth.exchange_token(
            session,
            await endpoint.url(),
            jwt,
            client_id=client_id,
            scope=scope,
            namespace=namespace,
            source=source,
            retry=retry,
            request_timeout=request_timeout,
            clock=clock,
        )

    return fetch


def token_file(path: str | os.PathLike[str], *, namespace: str = "") -> SubjectToken:
    """A token file (projected ServiceAccount or workload-identity token), read on every call
    in a worker thread: the kubelet replaces it long before it expires."""
    file = Path(path)

    async def read() -> str:
        try:
            text = await asyncio.to_thread(file.read_text, encoding="utf-8")
        except FileNotFoundError as exc:
            raise _file_unavailable(file, "does not exist", namespace) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise _file_unavailable(
                file, f"cannot be read ({type(exc).__name__})", namespace
            ) from exc
        value = text.strip()
        if not value:
            raise _file_unavailable(file, "is empty", namespace)
        return value

    return read


def _file_unavailable(file: Path, problem: str, namespace: str) -> CredentialUnavailable:
    return CredentialUnavailable(
        f"token file {file} {problem}", namespace=namespace, source=f"file/{file}"
    )


def minted_service_account_token(
    cache: TokenCache,
    mint: Mint,
    namespace: str,
    service_account: str,
    audience: str,
    expiration_seconds: int = MIN_SA_TOKEN_SECONDS,
) -> SubjectToken:
    """A ServiceAccount token minted with TokenRequest for ``audience``, kept in ``cache``
    (kind ``sa-token``) so a burst of exchanges for one namespace costs one TokenRequest."""
    if expiration_seconds < MIN_SA_TOKEN_SECONDS:
        raise ValueError(f"TokenRequest needs expiration_seconds >= {MIN_SA_TOKEN_SECONDS}")
    key = CacheKey(namespace, f"sa-token:{service_account}:aud={audience}", MINTED_HOST)

    async def fetch() -> AccessToken:
        return await mint(namespace, service_account, [audience], expiration_seconds)

    async def subject() -> str:
        return (await cache.get(key, fetch, kind=SA_TOKEN_KIND)).value

    return subject
