"""Where a workspace's token endpoint is: OIDC discovery, retried like the token endpoint.

``GET {host}/oidc/.well-known/oauth-authorization-server`` answers ``token_endpoint``. A 429,
5xx, timeout or dropped connection is tried again under the same ``RetryPolicy`` as a token
request (Retry-After honoured); once that gives up, or when the answer is unusable, the
standard ``{host}/oidc/v1/token`` is used, as every workspace serves it. An endpoint on
another origin is refused, so a client secret only ever goes to the allow-listed host.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from gateway.databricks.retries import RetryPolicy, retry_after_of
from gateway.databricks.token_response import TRANSIENT_STATUSES
from gateway.databricks.wire import parse_retry_after
from gateway.errors import TokenEndpointError
from gateway.logs import get_logger
from gateway.settings.base import normalize_host

log = get_logger(__name__)

DISCOVERY_PATH = "/oidc/.well-known/oauth-authorization-server"
DEFAULT_TOKEN_PATH = "/oidc/v1/token"  # noqa: S105 (a path, not a credential)
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10)
DEFAULT_DISCOVERY_RETRY = RetryPolicy(deadline=60.0, initial=0.5, maximum=10.0)


@dataclass(frozen=True, slots=True)
class Discovered:
    """A token endpoint, and whether discovery settled it (False: the standard path, used
    because discovery kept failing, which is worth asking again later)."""

    endpoint: str
    settled: bool


def host_key(host: str) -> str:
    """One spelling per workspace, so every spelling shares one endpoint and one discovery."""
    try:
        return normalize_host(host)
    except ValueError:
        return host.strip().rstrip("/")


async def discover(
    session: aiohttp.ClientSession,
    host: str,
    *,
    request_timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    retry: RetryPolicy = DEFAULT_DISCOVERY_RETRY,
) -> Discovered:
    host = host_key(host)
    url = host + DISCOVERY_PATH

    async def attempt() -> tuple[int, bytes]:
        try:
            async with session.get(
                url,
                headers={"Accept": "application/json"},
                timeout=request_timeout,
                allow_redirects=False,
            ) as resp:
                status, headers = resp.status, resp.headers
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unable(url, type(exc).__name__) from exc
        if status in TRANSIENT_STATUSES:
            raise _unable(url, f"HTTP {status}", status, parse_retry_after(headers))
        return status, raw

    fallback = host + DEFAULT_TOKEN_PATH
    try:
        answer: tuple[int, bytes] = await retry.token_endpoint(url, retry_after=retry_after_of)(
            attempt
        )
    except TokenEndpointError as exc:
        log.warning("oauth_discovery_failed", host=host, error=str(exc))
        return Discovered(fallback, settled=False)
    status, raw = answer
    endpoint = _discovered_endpoint(status, raw)
    if endpoint is None:
        log.warning("oauth_discovery_failed", host=host, http_status=status)
        return Discovered(fallback, settled=True)
    if not _same_origin(endpoint, host):
        log.warning("oauth_discovery_foreign_endpoint", host=host, token_endpoint=endpoint)
        return Discovered(fallback, settled=True)
    return Discovered(endpoint, settled=True)


def _unable(
    url: str, why: str, status: int | None = None, retry_after: float | None = None
) -> TokenEndpointError:
    return TokenEndpointError(
        f"OIDC discovery {url} failed: {why}",
        namespace="",
        source="oauth-discovery",
        http_status=status,
        transient=True,
        retry_after=retry_after,
    )


def _discovered_endpoint(status: int, raw: bytes) -> str | None:
    if status != 200:
        return None
    try:
        payload = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        return None
    endpoint = payload.get("token_endpoint") if isinstance(payload, dict) else None
    return endpoint if isinstance(endpoint, str) and endpoint else None


def _same_origin(url: str, host: str) -> bool:
    parts = urlsplit(url)
    return host_key(f"{parts.scheme}://{parts.netloc}") == host
