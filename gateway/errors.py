"""The one exception tree of lakegate.

Every error that crosses a module boundary is one of these. Foreign exceptions (aiohttp,
kubernetes-asyncio, sqlite, pydantic) are translated at the edge that meets them, with
``raise ... from exc``, so nothing above an edge sees a foreign type. The API maps this tree
to problem+json in exactly one place (``gateway.api.problems``), using ``status``, ``title``
and the fields each error carries.

    LakegateError
    ├── ConfigError                 settings file or environment invalid (file, key)
    ├── RequestError                the caller's request cannot be served as sent
    │   ├── InvalidRequest          400: body, parameter or name invalid (field)
    │   ├── NotFound                404: no such run in this namespace
    │   ├── Conflict                409: Idempotency-Key reused with another body
    │   ├── PayloadTooLarge         413
    │   ├── QuotaExceeded           429: namespace over its rate or queue (retry_after)
    │   ├── Unauthenticated         401: no or bad caller credential
    │   └── Forbidden               403: known caller outside its namespaces
    ├── IdentityError               a namespace's Databricks identity cannot be had (namespace)
    │   ├── IdentityNotConfigured   nothing configured for the namespace, and no opt-in default
    │   ├── CredentialUnavailable   a secret, ServiceAccount or token file is missing or bad
    │   ├── HostNotAllowed          a credential would be sent to a host off the allow-list
    │   └── TokenEndpointError      the token endpoint refused or failed (status, error_code)
    ├── UpstreamError               a remote service failed (service, status, error_code)
    │   ├── DatabricksError         the Jobs API answered with an error
    │   │   ├── DatabricksAuthError         401, or 403 "Invalid access token": refresh once
    │   │   ├── DatabricksPermissionDenied  403 PERMISSION_DENIED
    │   │   ├── DatabricksInvalidRequest    400: a permanent refusal of what we sent
    │   │   ├── DatabricksRunNotFound       the run id is unknown to the workspace
    │   │   ├── DatabricksRateLimited       429 (retry_after)
    │   │   └── DatabricksUnavailable       5xx, timeouts, dropped connections (transient)
    │   └── KubernetesError         the Kubernetes API answered with a Status error
    └── StoreError                  the ledger could not be read or written

``transient`` says whether trying the same thing again later may succeed; retry policies and
the poller decide on it, never on the class name alone.
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

    def __init__(self, message: str, *, namespace: str, retry_after: float) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.retry_after = retry_after

    def fields(self) -> dict[str, object]:
        return {"namespace": self.namespace, "retry_after": self.retry_after}


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
