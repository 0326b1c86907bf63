"""``CallerGate``: the configured authentication methods, the grants, and their reload.

The gate reads the credential from the request headers, picks the method that can judge it,
and applies the current grants. It is built by the composition root from the ``callers``
section with the objects it needs from outside the API (a TokenReview client, a reader of
namespace labels, one HTTP session for JWKS fetches), and ``reload(section)`` swaps in a new
section atomically; authenticators whose settings did not change are kept with their caches.

Which method judges a credential:

- ``X-API-Key: <key>``: API keys;
- ``Authorization: Bearer <JWT>`` whose unverified ``iss`` is a configured JWT issuer: that
  issuer's keys; any other JWT: TokenReview (ServiceAccount tokens are JWTs);
- ``Authorization: Bearer <anything else>``: API keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Literal

from gateway.callers.api_keys import ApiKeyAuthenticator, Hasher, derive
from gateway.callers.grants import Authorizer, Grant, NamespaceLabels, caller_for
from gateway.callers.hosts import HostNamespaces
from gateway.callers.issuers import JwtAuthenticator, peek_issuer
from gateway.callers.jwks import Session
from gateway.callers.reviews import KubernetesAuthenticator, Reviewer
from gateway.callers.types import Caller, Identity, Method, Refused
from gateway.errors import ConfigError, InvalidRequest
from gateway.logs import get_logger
from gateway.secrets_registry import remember
from gateway.settings import CallersSettings

log = get_logger(__name__)

API_KEY_HEADER = "X-API-Key"
ANONYMOUS = "anonymous"
DISABLED_DETAIL = "AUTHENTICATION DISABLED: every caller may act for every namespace"
NO_CREDENTIAL = "no credential was sent"
_DISABLED_HINT = "method 'none' is for demos; list kubernetes, api_key or jwt in callers.methods"


@dataclass(frozen=True, slots=True)
class CallerCredential:
    """What a request presents to prove its caller (a bearer token or an API key), as sent.

    Not a Databricks credential: those are the identities' business (``gateway.identity``).
    """

    kind: Literal["bearer", "api_key"]
    value: str

    def __repr__(self) -> str:
        # Never the value: a stray log of this object must not leak the credential.
        return f"CallerCredential(kind={self.kind!r})"

    __str__ = __repr__


def credential_from(headers: Mapping[str, str]) -> CallerCredential | None:
    """The one credential a request carries; None without one. Pure.

    Raises ``Refused`` for a malformed Authorization header, and ``InvalidRequest`` (400) for
    a repeated credential header or two different credentials, rather than guessing which
    one the caller meant.
    """
    authorization = _one_header(headers, "Authorization")
    api_key = _one_header(headers, API_KEY_HEADER)
    bearer: str | None = None
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise Refused("only Bearer credentials are accepted in Authorization")
        bearer = value.strip()
        if not bearer:
            raise Refused("the Bearer credential is empty")
    if api_key is not None:
        api_key = api_key.strip()
        if not api_key:
            raise Refused(f"the {API_KEY_HEADER} header is empty")
        if bearer is not None and bearer != api_key:
            raise InvalidRequest(
                f"the request carries two credentials, in Authorization and {API_KEY_HEADER}; "
                "send one of them",
                field=f"header {API_KEY_HEADER}",
            )
        return CallerCredential("api_key", api_key)
    return CallerCredential("bearer", bearer) if bearer is not None else None


def _one_header(headers: Mapping[str, str], name: str) -> str | None:
    """The one value of header ``name``; a request repeating it is refused (400), since two
    parsers (a proxy's, ours) could each take a different one."""
    getall = getattr(headers, "getall", None)
    found = list(getall(name, ())) if getall is not None else []
    if len(found) > 1:
        raise InvalidRequest(
            f"the request carries {len(found)} {name} headers; send exactly one",
            field=f"header {name}",
        )
    return headers.get(name)


@dataclass(frozen=True, slots=True)
class _State:
    settings: CallersSettings
    kubernetes: KubernetesAuthenticator | None
    api_keys: ApiKeyAuthenticator | None
    jwt: JwtAuthenticator | None
    grants: tuple[Grant, ...]
    authorizer: Authorizer
    hosts: HostNamespaces


class CallerGate:
    def __init__(
        self,
        settings: CallersSettings,
        *,
        reviewer: Reviewer | None = None,
        labels: NamespaceLabels | None = None,
        session: Session | None = None,
        hasher: Hasher = derive,
    ) -> None:
        self._reviewer = reviewer
        self._hasher = hasher
        self._labels = labels
        self._session = session
        self._state = self._build(settings, None)

    @property
    def settings(self) -> CallersSettings:
        return self._state.settings

    @property
    def disabled(self) -> bool:
        """True in ``none`` mode: every caller may act for every namespace."""
        return "none" in self._state.settings.methods

    def readiness(self) -> tuple[bool, str]:
        methods = self._state.settings.methods
        if not methods:
            return False, "no caller authentication method is configured: every call is refused"
        if self.disabled:
            return True, DISABLED_DETAIL
        return True, "methods: " + ", ".join(methods)

    def announce(self) -> None:
        """Log at start-up how callers are let in; loud when anyone may act for anything."""
        ok, detail = self.readiness()
        if self.disabled:
            log.warning("callers_authentication_disabled", detail=detail, hint=_DISABLED_HINT)
        elif not ok:
            log.warning("callers_not_configured", detail=detail)
        else:
            log.info("callers_configured", detail=detail)

    def _build(self, settings: CallersSettings, old: _State | None) -> _State:
        methods = settings.methods
        problems = []
        if "kubernetes" in methods and self._reviewer is None:
            problems.append("callers.methods: 'kubernetes' needs the Kubernetes API (TokenReview)")
        if settings.uses_selectors() and self._labels is None:
            problems.append("callers: namespace_selector needs the Kubernetes API (Namespaces)")
        if "jwt" in methods and self._session is None:
            problems.append("callers.methods: 'jwt' needs an HTTP session for the issuers' keys")
        if problems:
            raise ConfigError(problems)
        kubernetes: KubernetesAuthenticator | None = None
        jwt: JwtAuthenticator | None = None
        api_keys: ApiKeyAuthenticator | None = None
        if "kubernetes" in methods and self._reviewer is not None:
            kept = old.kubernetes if old is not None else None
            if kept is not None and kept.settings == settings.kubernetes:
                kubernetes = kept  # keeps its cache of reviewed tokens
            else:
                kubernetes = KubernetesAuthenticator(settings.kubernetes, self._reviewer)
        if "jwt" in methods and self._session is not None:
            kept_jwt = old.jwt if old is not None else None
            if kept_jwt is not None and kept_jwt.issuers == settings.jwt_issuers:
                jwt = kept_jwt  # keeps the issuers' keys
            else:
                jwt = JwtAuthenticator(settings.jwt_issuers, self._session)
        if "api_key" in methods:
            api_keys = ApiKeyAuthenticator(settings.api_keys, hasher=self._hasher)
        authorizer = Authorizer(self._labels, cache_seconds=settings.namespace_labels_cache_seconds)
        grants = tuple(Grant.from_settings(g) for g in settings.grants)
        hosts = HostNamespaces(settings.namespace_host_pattern)
        return _State(settings, kubernetes, api_keys, jwt, grants, authorizer, hosts)

    def reload(self, settings: CallersSettings) -> None:
        """Swap in a new ``callers`` section; raises ``ConfigError`` and keeps the old one when
        the new one needs something this process was not started with.

        Requests already past authentication finish under the section they started with.
        Replaced authenticators are dropped, not closed: a review still in flight for one of
        them completes and is forgotten.
        """
        self._state = self._build(settings, self._state)
        log.info("callers_reloaded", methods=list(settings.methods), grants=len(settings.grants))
        if self.disabled:
            log.warning("callers_authentication_disabled", detail=DISABLED_DETAIL)

    async def identify(self, headers: Mapping[str, str]) -> Identity:
        """Who the request's credential proves the caller is; raises ``Refused``."""
        state = self._state
        methods = state.settings.methods
        if "none" in methods:
            return Identity(ANONYMOUS, "none")
        credential = credential_from(headers)
        if credential is None:
            raise Refused(NO_CREDENTIAL)
        identity = await self._proven(state, credential)
        # A caller's own token is a secret we now hold: no echo may quote it. Only proven ones
        # are remembered, so a flood of made-up tokens cannot churn the registry.
        remember(credential.value)
        return identity

    async def _proven(self, state: _State, credential: CallerCredential) -> Identity:
        if credential.kind == "api_key":
            return await self._with_api_key(state, credential.value)
        issuer = peek_issuer(credential.value)
        if issuer is not None and state.jwt is not None and state.jwt.accepts(issuer):
            return await _tried("jwt", state.jwt.authenticate(credential.value))
        if issuer is not None and state.kubernetes is not None:
            return await _tried("kubernetes", state.kubernetes.authenticate(credential.value))
        if state.api_keys is not None:
            return await self._with_api_key(state, credential.value)
        if issuer is not None:
            raise Refused("the token's issuer is not accepted", method="jwt")
        raise Refused("the credential is not one this gateway accepts")

    @staticmethod
    async def _with_api_key(state: _State, key: str) -> Identity:
        if state.api_keys is None:
            raise Refused("API keys are not accepted by this gateway")
        return await _tried("api_key", state.api_keys.authenticate(key))

    def caller(self, identity: Identity) -> Caller:
        return caller_for(identity, self._state.grants)

    def namespace_from_host(self, host: str | None) -> str | None:
        """The namespace the request's Host names under ``namespace_host_pattern``, if any."""
        return self._state.hosts.namespace(host)

    async def allows(self, caller: Caller, namespace: str) -> bool:
        return await self._state.authorizer.allows(caller, namespace)

    async def aclose(self) -> None:
        state = self._state
        for part in (state.kubernetes, state.api_keys, state.jwt, state.authorizer):
            if part is not None:
                await part.aclose()


async def _tried(method: Method, attempt: Awaitable[Identity]) -> Identity:
    """Await an authentication attempt, labelling a refusal with the method that refused."""
    try:
        return await attempt
    except Refused as exc:
        exc.method = method
        raise
