"""``Status`` error objects, shaped as apimachinery's ``pkg/api/errors`` builds them.

Handlers raise ``StatusError``; the server's middleware writes its body with its code.
``details.kind`` holds the resource (plural), and ``group`` is left out for the core group.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    500: "InternalError",
}


def status_body(
    code: int,
    message: str,
    *,
    reason: str | None = None,
    name: str | None = None,
    resource: str | None = None,
    group: str = "",
    causes: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, "Unknown"),
    }
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if resource:
        details["kind"] = resource
    if causes:
        details["causes"] = causes
    # Unauthorized and BadRequest carry no details at all; NotFound and the others always do.
    if details or code in (404, 405):
        body["details"] = details
    body["code"] = code
    return body


class StatusError(Exception):
    """An API error; ``body`` is the Status object, ``code`` the HTTP status."""

    def __init__(self, code: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.body = status_body(code, message, **details)
        self.headers: dict[str, str] = {}

    def response(self) -> web.Response:
        return web.Response(
            text=json.dumps(self.body, separators=(",", ":")),
            status=self.code,
            content_type="application/json",
            headers=self.headers,
        )


def qualified(resource: str, group: str) -> str:
    """``secrets`` for the core group, ``tokenreviews.authentication.k8s.io`` otherwise."""
    return f"{resource}.{group}" if group else resource


def bad_request(message: str) -> StatusError:
    return StatusError(400, message)


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized")


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        404,
        f'{qualified(resource, group)} "{name}" not found',
        name=name,
        resource=resource,
        group=group,
    )


def route_not_found() -> StatusError:
    return StatusError(404, "the server could not find the requested resource")


def expired(message: str) -> StatusError:
    return StatusError(410, message)


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> StatusError:
    """422: ``causes`` are (field, bad value, why); the message joins them as the API does."""
    described = [f"{field}: Invalid value: {value}: {why}" for field, value, why in causes]
    joined = described[0] if len(described) == 1 else f"[{', '.join(described)}]"
    return StatusError(
        422,
        f'{qualified(kind, group)} "{name}" is invalid: {joined}',
        name=name,
        resource=kind,
        group=group,
        causes=[
            {
                "reason": "FieldValueInvalid",
                "message": f"Invalid value: {value}: {why}",
                "field": field,
            }
            for field, value, why in causes
        ],
    )


def error_event(code: int, message: str) -> dict[str, Any]:
    """An in-stream watch ERROR event; the client needs code, reason and message."""
    return {"type": "ERROR", "object": status_body(code, message)}
