"""Watch stream lines: events, bookmarks, and ERROR events turned into errors."""

from __future__ import annotations

import json

import pytest

from gateway.errors import KubernetesError
from gateway.kube.source import parse_event_line
from gateway.kube.status import KubeExpired, KubeForbidden, Target

TARGET = Target("serviceaccounts")
SA = {
    "kind": "ServiceAccount",
    "apiVersion": "v1",
    "metadata": {"name": "etl", "namespace": "tenant-a", "uid": "u", "resourceVersion": "12"},
}


def line(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


@pytest.mark.parametrize("kind", ["ADDED", "MODIFIED", "DELETED"])
def test_object_events_carry_the_account_and_its_version(kind: str) -> None:
    """ADDED, MODIFIED and DELETED carry the account and move the resourceVersion."""
    event = parse_event_line(line({"type": kind, "object": SA}), TARGET)
    assert event is not None
    assert event.type == kind
    assert event.resource_version == "12"
    assert event.account is not None
    assert event.account.key == ("tenant-a", "etl")


def test_bookmark_moves_the_version_only() -> None:
    """A BOOKMARK carries a resourceVersion and no account."""
    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "99"}}}
    event = parse_event_line(line(bookmark), TARGET)
    assert event is not None
    assert (event.type, event.resource_version, event.account) == ("BOOKMARK", "99", None)


def test_in_stream_410_is_expired() -> None:
    """The ERROR event for a too old resourceVersion raises KubeExpired: relist."""
    error = {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "status": "Failure",
            "message": "too old resource version: 5 (42)",
            "reason": "Expired",
            "code": 410,
        },
    }
    with pytest.raises(KubeExpired, match="too old resource version"):
        parse_event_line(line(error), TARGET)


def test_bare_status_line_is_an_error() -> None:
    """A Status instead of an event (a refused watch) is raised as its error."""
    status = {"kind": "Status", "code": 403, "reason": "Forbidden", "message": "no watch for you"}
    with pytest.raises(KubeForbidden, match="no watch for you"):
        parse_event_line(line(status), TARGET)


@pytest.mark.parametrize("raw", [b"\n", b"  \r\n", b""])
def test_blank_lines_are_skipped(raw: bytes) -> None:
    """Keep-alive blank lines carry nothing and break nothing."""
    assert parse_event_line(raw, TARGET) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json\n",
        line({"type": "ADDED"}),
        line({"type": "ADDED", "object": {"metadata": {}}}),
        line({"type": "BOOKMARK", "object": {"metadata": {}}}),
    ],
)
def test_malformed_lines_are_kubernetes_errors(raw: bytes) -> None:
    """A line no API server would send is an error of ours, never a KeyError."""
    with pytest.raises(KubernetesError):
        parse_event_line(raw, TARGET)
