"""Why a Git credential could not be kept: an ``IdentityError`` (the principal cannot be set
up for the run), 422 when waiting will not mend it, 503 when it may (``transient``)."""

from __future__ import annotations

from gateway.errors import IdentityError


class GitCredentialError(IdentityError):
    """The principal's Azure DevOps Git credential could not be made valid for the run."""

    title = "Git credential not kept"

    def __init__(
        self,
        message: str,
        *,
        namespace: str,
        source: str | None = None,
        transient: bool,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, namespace=namespace, source=source)
        self.transient = transient
        self.retry_after = retry_after
        self.status = 503 if transient else 422
