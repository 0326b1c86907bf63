"""Who is calling, and which namespaces it may act for: a domain package, with no aiohttp.web.

The API's caller middleware (``gateway.api.callers``) hands the request headers to a
``CallerGate`` and gets back who the credential proves (an ``Identity``), then the operator's
grants applied to it (a ``Caller``); handlers ask the gate whether that caller may act for a
namespace. Nothing here reads a request or writes a response, so each piece is tested without
a server, and another front end could use the gate as it is.

    gate.py      CallerGate: which method judges a credential, the grants, reload
    reviews.py   Kubernetes ServiceAccount tokens, checked with TokenReview
    api_keys.py  API keys, configured as hashes and compared in constant time
    issuers.py   JWTs from configured OIDC issuers, their claims mapped to namespaces
    jwks.py      the issuers' signing keys, fetched and cached (the one HTTP client here)
    grants.py    grants and namespace label selectors: which namespaces a caller may use
    hosts.py     which namespace the Host a client called names (namespace_host_pattern)
    types.py     the values: Identity, Caller, Refused
"""

from gateway.callers.gate import CallerCredential, CallerGate, credential_from
from gateway.callers.types import Caller, Identity, Method, Refused

__all__ = [
    "Caller",
    "CallerCredential",
    "CallerGate",
    "Identity",
    "Method",
    "Refused",
    "credential_from",
]
