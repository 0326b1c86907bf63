"""Kubernetes ``Status`` errors and transport failures, translated into ``gateway.errors``.

This is the one place in lakegate where kubernetes-asyncio and aiohttp exceptions met on the
way to the Kubernetes API become ours; every call in ``gateway.kube`` runs inside
``translated(...)``. The subclasses below refine ``KubernetesError`` so that callers can tell
"not there" from "not allowed" without reading status codes:

    KubernetesError                 (gateway.errors)
    └── KubeApiError                a call on a named object failed (resource, namespace, name)
        ├── KubeNotFound            404: the object does not exist
        ├── KubeForbidden           403: RBAC does not let lakegate do this
        ├── KubeInvalid             422 (or 400): the request was refused as invalid
        └── KubeExpired             410: a watch's or a list's resourceVersion is too old

Messages quote the API server's own ``Status.message`` (it names the user, verb and resource
RBAC refused), never a request body, so no token or secret value reaches an error.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp

from gateway.errors import KubernetesError
from gateway.logs import upstream_text

if TYPE_CHECKING:
    from kubernetes_asyncio.client.exceptions import ApiException, OpenApiException


@dataclass(frozen=True, slots=True)
class Target:
    """What a call was about, for messages: ``secret tenant-a/databricks-oauth``."""

    resource: str
    namespace: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        if self.namespace and self.name:
            return f"{self.resource} {self.namespace}/{self.name}"
        if self.namespace:
            return f"{self.resource} in namespace {self.namespace}"
        if self.name:
            return f"{self.resource} {self.name}"
        return self.resource


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """The parts of a ``Status`` object worth keeping; every field may be missing."""

    code: int | None = None
    reason: str | None = None
    message: str | None = None


class KubeApiError(KubernetesError):
    """The Kubernetes API refused a call about ``target``."""

    def __init__(
        self,
        message: str,
        *,
        target: Target,
        http_status: int | None,
        reason: str | None,
        status_message: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, reason=reason)
        self.target = target
        self.status_message = status_message

    def fields(self) -> dict[str, object]:
        out = super().fields()
        out["resource"] = self.target.resource
        if self.target.namespace:
            out["namespace"] = self.target.namespace
        if self.target.name:
            out["name"] = self.target.name
        return out


class KubeNotFound(KubeApiError):
    """404: the named object (secret, ServiceAccount) does not exist."""


class KubeForbidden(KubeApiError):
    """403: lakegate's RBAC does not allow the call; the message quotes the API server."""


class KubeInvalid(KubeApiError):
    """422 or 400: the API server refused what was sent (e.g. a too short token expiry)."""


class KubeExpired(KubeApiError):
    """410: the resourceVersion a watch or list continued from is gone; list again."""


def parse_status(body: str | bytes | None) -> StatusInfo:
    """Read a ``Status`` body leniently: proxies and old servers send other things."""
    if not body:
        return StatusInfo()
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return StatusInfo()
    if not isinstance(data, dict):
        return StatusInfo()
    code = data.get("code")
    reason = data.get("reason")
    message = data.get("message")
    return StatusInfo(
        code=code if isinstance(code, int) else None,
        reason=reason if isinstance(reason, str) and reason else None,
        message=upstream_text(message) if isinstance(message, str) and message else None,
    )


def error_from_status(
    http_status: int, status: StatusInfo, *, action: str, target: Target
) -> KubeApiError:
    """The error for an HTTP error answer (or an in-stream ERROR event) about ``target``."""
    code = status.code or http_status
    cls, text = _classify(code, status.reason, action, target)
    quoted = f": {status.message}" if status.message else ""
    return cls(
        text + quoted,
        target=target,
        http_status=code,
        reason=status.reason,
        status_message=status.message,
    )


def _classify(
    code: int, reason: str | None, action: str, target: Target
) -> tuple[type[KubeApiError], str]:
    if code == 404:
        return KubeNotFound, f"Kubernetes has no {target}"
    if code == 403:
        return KubeForbidden, f"Kubernetes RBAC forbids lakegate to {action} {target}"
    if code in (400, 422):
        return KubeInvalid, f"Kubernetes refused to {action} {target} as invalid"
    if code == 410:
        return KubeExpired, f"Kubernetes expired the resourceVersion used to {action} {target}"
    if code == 401:
        return KubeApiError, f"Kubernetes refused lakegate's own credential to {action} {target}"
    answer = f"{code} {reason}" if reason else str(code)
    return KubeApiError, f"Kubernetes answered {answer} to {action} {target}"


@functools.cache
def _client_exceptions() -> tuple[type[ApiException], type[OpenApiException]]:
    # Imported at the first translation, never at import: importing kubernetes-asyncio costs
    # about 40 MiB, which a gateway with kubernetes.mode: off does not pay (the identity
    # resolver imports this module's error classes whatever the mode).
    from kubernetes_asyncio.client import exceptions

    return exceptions.ApiException, exceptions.OpenApiException


def error_from_exception(exc: BaseException, *, action: str, target: Target) -> KubernetesError:
    """Translate what a kubernetes-asyncio call raised; anything unknown is re-raised as is."""
    api_exception, open_api_exception = _client_exceptions()
    if isinstance(exc, api_exception):
        if exc.status:
            return error_from_status(
                int(exc.status), parse_status(exc.body), action=action, target=target
            )
        # status 0: the client refused to build the request; nothing reached the server.
        return KubernetesError(f"Kubernetes client could not {action} {target}: {exc.reason}")
    if isinstance(exc, open_api_exception):
        return KubernetesError(f"Kubernetes client could not {action} {target}: {exc}")
    if isinstance(exc, TimeoutError):
        return KubernetesError(f"Kubernetes API timed out trying to {action} {target}")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return KubernetesError(
            f"Kubernetes API unreachable trying to {action} {target}: {type(exc).__name__}: {exc}"
        )
    if isinstance(exc, ValueError):
        # The client's models refuse answers lacking required fields with a ValueError.
        return KubernetesError(
            f"Kubernetes API sent a malformed answer trying to {action} {target}: {exc}"
        )
    raise TypeError(f"not a Kubernetes client failure: {exc!r}") from exc


@contextmanager
def translated(action: str, target: Target) -> Iterator[None]:
    """Run a Kubernetes call; raise ``KubernetesError`` (or a subclass) for its failures."""
    try:
        yield
    except KubernetesError:
        raise
    except (_client_exceptions()[1], TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        raise error_from_exception(exc, action=action, target=target) from exc
