"""Status errors and transport failures become gateway errors, with the API server's words."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from gateway.errors import KubernetesError
from gateway.kube.status import (
    KubeApiError,
    KubeExpired,
    KubeForbidden,
    KubeInvalid,
    KubeNotFound,
    StatusInfo,
    Target,
    error_from_exception,
    parse_status,
    translated,
)

SECRET = Target("secret", "tenant-a", "databricks-oauth")
FORBIDDEN = (
    'secrets "databricks-oauth" is forbidden: User "system:serviceaccount:gw:gateway" cannot '
    'get resource "secrets" in API group "" in the namespace "tenant-a"'
)


def status_body(code: int, reason: str, message: str) -> Any:
    # The client stores the body as decoded text; typed loosely as the library is untyped.
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
    )


def test_parse_status_reads_code_reason_and_message() -> None:
    """A Status body yields its code, reason and message."""
    assert parse_status(status_body(404, "NotFound", "nope")) == StatusInfo(404, "NotFound", "nope")


@pytest.mark.parametrize("body", [None, "", b"<html>bad gateway</html>", "[1,2]", '{"code":"x"}'])
def test_parse_status_is_lenient(body: str | bytes | None) -> None:
    """Whatever a proxy sends instead of a Status parses to 'nothing known'."""
    assert parse_status(body).message is None


@pytest.mark.parametrize(
    ("code", "cls", "transient"),
    [
        (404, KubeNotFound, False),
        (403, KubeForbidden, False),
        (422, KubeInvalid, False),
        (400, KubeInvalid, False),
        (410, KubeExpired, False),
        (401, KubeApiError, False),
        (429, KubeApiError, True),
        (500, KubeApiError, True),
        (503, KubeApiError, True),
    ],
)
def test_api_exception_maps_by_status(
    code: int, cls: type[KubernetesError], transient: bool
) -> None:
    """Each HTTP status becomes its own error type; 429 and 5xx are worth retrying."""
    exc = ApiException(status=code, reason="Some Reason")
    exc.body = status_body(code, "Reason", "the server's words")
    err = error_from_exception(exc, action="read", target=SECRET)
    assert type(err) is cls
    assert err.http_status == code
    assert err.transient is transient
    assert "the server's words" in err.message


def test_forbidden_message_says_rbac_and_quotes_the_status() -> None:
    """A 403 says RBAC forbids the call and quotes who may not do what, and where."""
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = status_body(403, "Forbidden", FORBIDDEN)
    err = error_from_exception(exc, action="read", target=SECRET)
    assert isinstance(err, KubeForbidden)
    assert err.message.startswith(
        "Kubernetes RBAC forbids lakegate to read secret tenant-a/databricks-oauth: "
    )
    assert err.message.endswith(FORBIDDEN)
    assert err.fields()["namespace"] == "tenant-a"
    assert err.fields()["name"] == "databricks-oauth"


def test_transport_failures_are_transient_without_status() -> None:
    """An unreachable or slow API server is a transient error without an HTTP status."""
    for exc in (aiohttp.ClientConnectionError("refused"), TimeoutError()):
        err = error_from_exception(exc, action="read", target=SECRET)
        assert type(err) is KubernetesError
        assert err.http_status is None
        assert err.transient


def test_malformed_answer_is_a_kubernetes_error() -> None:
    """The client's model validation (a ValueError) becomes a KubernetesError."""
    err = error_from_exception(
        ValueError("Invalid value for `items`, must not be `None`"), action="list", target=SECRET
    )
    assert "malformed" in err.message


def test_translated_chains_the_foreign_exception() -> None:
    """translated() raises ours from theirs, so the cause stays in tracebacks."""
    with pytest.raises(KubeNotFound) as info, translated("read", SECRET):
        raise ApiException(status=404, reason="Not Found")
    assert isinstance(info.value.__cause__, ApiException)


def test_translated_leaves_other_exceptions_alone() -> None:
    """Only the client's failures are translated; a bug stays a bug."""
    with pytest.raises(KeyError), translated("read", SECRET):
        raise KeyError("ours")
