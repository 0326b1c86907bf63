"""Who is calling, and which namespaces it may act for.

Every handler that touches a namespace starts with::

    caller = await authorize(request, namespace, "runs.submit")

``callers_middleware`` authenticates the request's credential before the handler runs (so the
body is never read for an unknown caller) and sets ``request[CALLER]``; it refuses nothing
itself, so that a facade with its own error format can shape the answer. ``authorize`` then
raises ``Unauthenticated`` (401: no credential, or a bad one) or ``Forbidden`` (403: a known
caller outside its namespaces; an unknown namespace gets the same answer, so none is revealed
to exist), and logs exactly one audit event, ``caller_authorized`` or ``caller_refused``, with
the caller's subject and method, the namespace, the action, the outcome and the reason; never
the credential. ``authenticate`` is the same without a namespace, for routes that name none.

As a guard against a handler that forgets to ask, a protected route that answers with success
without having called ``authorize`` or ``authenticate`` is turned into a 500. Public routes
(/healthz, /readyz, /openapi.json, and handlers marked ``@public``) are never authenticated;
/metrics names every namespace, so it needs a caller (or the metrics listener).

This module is the web side of caller authentication: reading the request, the middleware,
the audit events. Who a credential proves and what it may do is decided by the domain
package ``gateway.callers`` (the gate, TokenReview, API keys, JWT issuers, grants), which
knows nothing of aiohttp.web.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.appkeys import CALLER, CALLERS
from gateway.callers.gate import NO_CREDENTIAL
from gateway.callers.types import Caller, Refused
from gateway.errors import Forbidden, LakegateError, Unauthenticated
from gateway.logs import get_logger
from gateway.settings import NAMESPACE_RE

__all__ = [
    "PUBLIC_ROUTES",
    "authenticate",
    "authorize",
    "callers_middleware",
    "default_namespace",
    "public",
]

PUBLIC_ROUTES = frozenset({"healthz", "readyz", "openapi"})

audit = get_logger("gateway.audit")

# What the middleware found: a caller, or why there is none (a refusal or an error in asking).
_FOUND = web.RequestKey("lakegate.callers.found", object)
_CHECKED = web.RequestKey("lakegate.callers.checked", bool)
_PUBLIC_ATTRIBUTE = "__lakegate_public__"

H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])

_NO_CREDENTIAL = (
    "A credential is required: send 'Authorization: Bearer <token>' or 'X-API-Key: <key>'."
)


def public(handler: H) -> H:
    """Mark a handler as open to anyone: the caller middleware leaves it alone."""
    setattr(handler, _PUBLIC_ATTRIBUTE, True)
    return handler


def _is_public(request: web.Request) -> bool:
    match_info = request.match_info
    if match_info.http_exception is not None:
        return True  # no route matched: the 404 or 405 reveals nothing about namespaces
    route = match_info.route
    return route.name in PUBLIC_ROUTES or getattr(route.handler, _PUBLIC_ATTRIBUTE, False)


@web.middleware
async def callers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _is_public(request):
        return await handler(request)
    gate = request.config_dict.get(CALLERS)
    found: Caller | Refused | LakegateError
    if gate is None:
        found = Refused("caller authentication is not configured")
    else:
        try:
            found = gate.caller(await gate.identify(request.headers))
        except Refused as exc:
            found = exc
        except LakegateError as exc:
            found = exc  # could not ask (TokenReview or JWKS unreachable): not a refusal
    request[_FOUND] = found
    if isinstance(found, Caller):
        request[CALLER] = found
    response = await handler(request)
    if response.status < 400 and not request.get(_CHECKED, False):
        audit.error("handler_skipped_authorization", route=request.match_info.route.name)
        if not response.prepared:
            # Raised, not built here, so each facade's error middleware gives it its shape.
            raise LakegateError(
                "This route answered without checking its caller; report it to the operators."
            )
    return response


def _namespace_field(namespace: str) -> str:
    # Only a valid name is logged: anything else is caller noise of any length.
    return namespace if NAMESPACE_RE.match(namespace) else "(invalid)"


def _refuse_unauthenticated(request: web.Request, namespace: str | None, action: str) -> NoReturn:
    found = request.get(_FOUND)
    event: dict[str, Any] = {"action": action}
    if namespace is not None:
        event["namespace"] = _namespace_field(namespace)
    if isinstance(found, LakegateError):
        audit.warning("caller_refused", **event, outcome="error", reason=found.message)
        raise found
    event["outcome"] = "unauthenticated"
    if isinstance(found, Refused):
        audit.warning("caller_refused", **event, method=found.method, reason=found.reason)
        if found.reason == NO_CREDENTIAL:
            raise Unauthenticated(_NO_CREDENTIAL)
        raise Unauthenticated(f"The credential was not accepted: {found.reason}.")
    audit.warning("caller_refused", **event, reason=NO_CREDENTIAL)
    raise Unauthenticated(_NO_CREDENTIAL)


def _why(caller: Caller, namespace: str) -> str:
    if caller.all_namespaces:
        return "authentication disabled"
    if namespace == caller.home_namespace:
        return "own namespace"
    if namespace in caller.namespaces:
        return "granted namespace"
    return "granted by namespace selector"


async def authorize(request: web.Request, namespace: str, action: str) -> Caller:
    """The caller, if it may do ``action`` in ``namespace``; else 401 or 403 (audited)."""
    request[_CHECKED] = True
    caller: Caller | None = request.get(CALLER)
    if caller is None:
        _refuse_unauthenticated(request, namespace, action)
    event: dict[str, Any] = {
        "subject": caller.subject,
        "method": caller.method,
        "namespace": _namespace_field(namespace),
        "action": action,
    }
    gate = request.config_dict[CALLERS]
    try:
        allowed = await gate.allows(caller, namespace)
    except LakegateError as exc:
        audit.warning("caller_refused", **event, outcome="error", reason=exc.message)
        raise
    if not allowed:
        audit.warning(
            "caller_refused", **event, outcome="forbidden", reason="namespace not granted"
        )
        # The same words whether or not the namespace exists.
        raise Forbidden(f"This caller may not act for namespace '{_namespace_field(namespace)}'.")
    audit.info("caller_authorized", **event, outcome="allowed", reason=_why(caller, namespace))
    return caller


def authenticate(request: web.Request, action: str) -> Caller:
    """The authenticated caller, for routes that name no namespace; else 401 (audited)."""
    request[_CHECKED] = True
    caller: Caller | None = request.get(CALLER)
    if caller is None:
        _refuse_unauthenticated(request, None, action)
    audit.info(
        "caller_authorized",
        subject=caller.subject,
        method=caller.method,
        action=action,
        outcome="allowed",
        reason="authenticated",
    )
    return caller


def default_namespace(request: web.Request) -> str | None:
    """The caller's configured default namespace, else its own, else its only granted one;
    None when that is ambiguous."""
    caller: Caller | None = request.get(CALLER)
    if caller is None:
        return None
    if caller.default_namespace is not None:
        return caller.default_namespace
    if caller.home_namespace is not None:
        return caller.home_namespace
    if len(caller.namespaces) == 1 and not caller.selectors:
        return next(iter(caller.namespaces))
    return None
