"""The one way lakegate opens a ClientSession for its outbound calls: one that keeps no cookie.

Each of these sessions serves every namespace at once: the Databricks and token-endpoint
calls, the webhook deliveries, the JWT issuers' key sets. aiohttp's default cookie jar keeps
what an upstream sets and sends it with the next request to that host, whoever it is made
for: a cookie one tenant's workspace, load balancer or webhook receiver set would travel with
another tenant's requests to the same host. Between tenants no state may carry over from one
caller to the next, and nothing lakegate calls needs a cookie (each request carries its own
bearer token or signature), so none is kept. Not reading a jar also saves its lookup on every
request.
"""

from __future__ import annotations

import aiohttp


def shared_session(
    *, user_agent: str, trust_env: bool, connector: aiohttp.BaseConnector | None = None
) -> aiohttp.ClientSession:
    """A session for calls made on behalf of any namespace: no cookie is kept or sent."""
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": user_agent},
        trust_env=trust_env,
        cookie_jar=aiohttp.DummyCookieJar(),
    )
