"""The one exception tree of lakegate.

Every error that crosses a module boundary is one of these. Foreign exceptions (aiohttp,
kubernetes-asyncio, sqlite, pydantic) are translated at the edge that meets them, with
``raise ... from exc``, so nothing above an edge sees a foreign type. The API maps this tree
to problem+json in exactly one place (``gateway.api.problems``), using ``status``, ``title``
and the fields each error carries; the Databricks-compatible facade maps it to Databricks'
error shape in one place too (``gateway.api.compat.errors``).

The number is the HTTP status lakegate answers with (``status``; ``*``: the status the gateway
answered the client with); in parentheses, the fields. Classes defined elsewhere name their
module.

    LakegateError                   500
    ├── ConfigError                 500  settings file or environment invalid (problems)
    ├── RequestError                400  the caller's request cannot be served as sent
    │   ├── InvalidRequest          400  body, parameter or name invalid (field)
    │   ├── NotFound                404  no such run in this namespace
    │   ├── Conflict                409  Idempotency-Key reused with another body
    │   ├── PayloadTooLarge         413
    │   ├── QuotaExceeded           429  namespace over its rate or queue (namespace, retry_after)
    │   ├── Unauthenticated         401  no or bad caller credential
    │   ├── Forbidden               403  known caller outside its namespaces
    │   ├── RunRejected             422  the run was refused for good at submission; stored
    │   │                                REJECTED (namespace, run_id)
    │   └── CompatError             400  a facade refusal worded as Databricks words it
    │                                    (error_code, status): gateway.api.compat.errors
    ├── IdentityError               503  a namespace's Databricks identity cannot be had
    │   │                                (namespace, source)
    │   ├── IdentityNotConfigured   403  nothing configured for the namespace, no opt-in default
    │   ├── CredentialUnavailable   503  a secret, ServiceAccount or token file missing or bad
    │   │   ├── RunIdentityGone     503  the identity a run was submitted under is gone: it
    │   │   │                            waits, followed by no other (run_id)
    │   │   ├── IdentityMisconfigured 422  the namespace's identity is wrongly set up (a Secret
    │   │   │                            without its key, a malformed value, two labelled
    │   │   │                            ServiceAccounts...): refused for good, not retried
    │   │   └── IdentityForbidden   403  RBAC forbids a read or TokenRequest lakegate needs
    │   ├── HostNotAllowed          403  a credential would go to a host off the allow-list
    │   └── TokenEndpointError      503  the token endpoint failed (5xx, 429, unreachable);
    │                                422 when it refused for good (400/401/403, no usable
    │                                token) (http_status, error_code, retry_after)
    ├── UpstreamError               502  a remote service failed (http_status, error_code,
    │   │                                retry_after)
    │   ├── DatabricksError         502  the Jobs API answered with an error
    │   │   ├── DatabricksAuthError         502  401, or 403 "Invalid access token": refresh once
    │   │   ├── DatabricksPermissionDenied  403  403 PERMISSION_DENIED
    │   │   ├── DatabricksInvalidRequest    400  a permanent refusal of what we sent
    │   │   ├── DatabricksRunNotFound       404  the run id is unknown to the workspace
    │   │   ├── DatabricksRateLimited       503  Databricks answered 429 (retry_after)
    │   │   └── DatabricksUnavailable       503  5xx, timeouts, dropped connections
    │   └── KubernetesError         502  the Kubernetes API failed (http_status, reason)
    │       └── KubeApiError        502  a call on a named object failed (target):
    │           │                        gateway.kube.status
    │           ├── KubeNotFound    502  the API server answered 404: no such object
    │           ├── KubeForbidden   502  it answered 403: RBAC does not let lakegate do this
    │           ├── KubeInvalid     502  it answered 422 or 400: what was sent is refused
    │           └── KubeExpired     502  it answered 410: the resourceVersion is too old
    ├── StoreError                  503  the ledger could not be read or written
    │   └── StoreUnavailable        503  the database is away (retry_after): gateway.store.errors
    ├── CredentialChecksBusy        503  too many unknown credentials being checked
    │   │                                (retry_after): gateway.callers.types
    │   ├── ChecksBusy              503  salted API-key checks: gateway.callers.salted
    │   └── ReviewsThrottled        503  TokenReviews of unknown tokens: gateway.callers.reviews
    └── GatewayClientError          500  a call through the REST client failed:
        │                                gateway.cli.errors (the client's side, not the API's)
        ├── ApiError                 *   the gateway answered an error (problem, request_id)
        ├── GatewayUnreachable      500  no answer: refused, dropped, timed out (url)
        └── UnexpectedResponse      500  a 2xx answer that is not the API's JSON

``transient`` says whether trying the same thing again later may succeed; retry policies and
the poller decide on it, never on the class name alone. It is a class default
(``QuotaExceeded``, ``DatabricksAuthError``, ``DatabricksRateLimited``,
``DatabricksUnavailable``, ``StoreError``, ``GatewayUnreachable``) or decided per error
(``TokenEndpointError``, ``KubernetesError``: no status, 429 or 5xx; ``ApiError``: 429, 5xx).

Outside the tree on purpose, because none crosses a boundary as itself: ``ValueError``
subclasses for what does not parse (``gateway.selectors.SelectorError``,
``gateway.kube.accounts.MalformedObject``), caught where they are met or failing start-up;
``gateway.model.IllegalTransition``, a move the state machine forbids, which is a bug; and
``gateway.callers.types.Refused``, a refused credential, which the API turns into
``Unauthenticated`` before it leaves the caller middleware.
"""

from __future__ import annotations


class LakegateError(Exception):
    """Base of every lakegate error."""

    status: int = 500
    title: str = "Internal error"
    transient: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def fields(self) -> dict[str, object]:
        """Structured fields worth showing to a caller or a log (never a secret)."""
        return {}


class ConfigError(LakegateError):
    """The settings are invalid; ``problems`` lists each one as 'file: key: message'."""

    title = "Invalid configuration"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)

    def fields(self) -> dict[str, object]:
        return {"problems": self.problems}


# --- the caller's request -------------------------------------------------------------------


class RequestError(LakegateError):
    """The request cannot be served as sent; the caller can fix it."""

    status = 400
    title = "Bad request"


class InvalidRequest(RequestError):
    status = 400
    title = "Invalid request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def fields(self) -> dict[str, object]:
        return {"field": self.field} if self.field else {}


class NotFound(RequestError):
    status = 404
    title = "Not found"


class Conflict(RequestError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(RequestError):
    status = 413
    title = "Payload too large"


class QuotaExceeded(RequestError):
    status = 429
    title = "Quota exceeded"
    transient = True

    def __init__(
        self,
        message: str,
        *,
        namespace: str,
        retry_after: float,
        limit: str | None = None,
        value: object = None,
        usage: object = None,
    ) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.retry_after = retry_after
        # Which limit refused (a quota key), its value, and the namespace's usage against it.
        self.limit = limit
        self.value = value
        self.usage = usage

    def fields(self) -> dict[str, object]:
        out: dict[str, object] = {"namespace": self.namespace, "retry_after": self.retry_after}
        if self.limit is not None:
            out.update(limit=self.limit, value=self.value, usage=self.usage)
        return out


class Unauthenticated(RequestError):
    status = 401
    title = "Unauthenticated"


class Forbidden(RequestError):
    status = 403
    title = "Forbidden"


# --- identities -----------------------------------------------------------------------------


class IdentityError(LakegateError):
    """The namespace's Databricks identity cannot be resolved or used."""

    status = 503
    title = "Databricks identity unavailable"

    def __init__(self, message: str, *, namespace: str, source: str | None = None) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.source = source

    def fields(self) -> dict[str, object]:
        out: dict[str, object] = {"namespace": self.namespace}
        if self.source:
            out["source"] = self.source
        return out


class IdentityNotConfigured(IdentityError):
    status = 403
    title = "Namespace has no Databricks identity"


class CredentialUnavailable(IdentityError):
    title = "Credential unavailable"


class RunRejected(RequestError):
    """A run refused for good when submitted (by Databricks, or for its identity): it is
    stored REJECTED, and the answer carries its id and the reason."""

    status = 422
    title = "Run rejected"

    def __init__(self, message: str, *, namespace: str, run_id: int) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.run_id = run_id

    def fields(self) -> dict[str, object]:
        return {"namespace": self.namespace, "run_id": self.run_id}


class RunIdentityGone(CredentialUnavailable):
    """The ServiceAccount or Secret a run was submitted under is gone; the run is followed
    and cancelled by that identity only, so it waits until the source is restored."""

    title = "Run identity gone"
    transient = True

    def __init__(self, message: str, *, namespace: str, run_id: int, source: str) -> None:
        super().__init__(message, namespace=namespace, source=source)
        self.run_id = run_id

    def fields(self) -> dict[str, object]:
        return {**super().fields(), "run_id": self.run_id}


class IdentityMisconfigured(CredentialUnavailable):
    """The namespace's identity is set up wrongly; it will not heal by waiting."""

    status = 422
    title = "Databricks identity misconfigured"


class IdentityForbidden(CredentialUnavailable):
    """RBAC does not let lakegate read an object, or mint a token, the identity needs."""

    status = 403
    title = "Databricks identity forbidden to lakegate"


class HostNotAllowed(IdentityError):
    status = 403
    title = "Workspace host not allowed"


class TokenEndpointError(IdentityError):
    title = "Token endpoint error"

    def __init__(
        self,
        message: str,
        *,
        namespace: str,
        source: str | None = None,
        http_status: int | None = None,
        error_code: str | None = None,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, namespace=namespace, source=source)
        self.http_status = http_status
        self.error_code = error_code
        self.transient = transient
        self.retry_after = retry_after
        if not transient:
            # invalid_client, invalid_grant, a 200 without a usable token: the namespace's
            # credential is wrong, which waiting will not mend.
            self.status = 422

    def fields(self) -> dict[str, object]:
        out = super().fields()
        if self.error_code:
            out["error_code"] = self.error_code
        return out


# --- remote services ------------------------------------------------------------------------


class UpstreamError(LakegateError):
    """A remote service answered with an error, or could not be reached."""

    status = 502
    title = "Upstream error"
    service = "upstream"

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        error_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.retry_after = retry_after

    def fields(self) -> dict[str, object]:
        out: dict[str, object] = {"upstream": self.service}
        if self.http_status is not None:
            out["upstream_status"] = self.http_status
        if self.error_code:
            out["error_code"] = self.error_code
        return out


class DatabricksError(UpstreamError):
    service = "databricks"
    title = "Databricks error"


class DatabricksAuthError(DatabricksError):
    """The token was refused; one refresh and one retry may cure it."""

    status = 502
    title = "Databricks refused the credential"
    transient = True


class DatabricksPermissionDenied(DatabricksError):
    status = 403
    title = "Databricks permission denied"


class DatabricksInvalidRequest(DatabricksError):
    status = 400
    title = "Databricks rejected the request"


class DatabricksRunNotFound(DatabricksError):
    status = 404
    title = "Databricks run not found"


class DatabricksRateLimited(DatabricksError):
    status = 503
    title = "Databricks rate limit"
    transient = True


class DatabricksUnavailable(DatabricksError):
    status = 503
    title = "Databricks unavailable"
    transient = True


class KubernetesError(UpstreamError):
    service = "kubernetes"
    title = "Kubernetes API error"

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, error_code=reason)
        self.transient = http_status is None or http_status >= 500 or http_status == 429


class StoreError(LakegateError):
    status = 503
    title = "Run ledger unavailable"
    transient = True
