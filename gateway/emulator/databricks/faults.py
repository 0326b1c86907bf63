"""Fault injection: rules set through ``/emulator/faults`` and the middleware that applies them.

A rule matches a path (exact or glob) and optionally a method, for its next ``count`` calls
or, with ``probability``, for every call it draws until cleared. Actions:

- ``status``: answer with that status and the body a real workspace sends for it;
- ``hang``: hold the request ``seconds`` (released early when faults are cleared or the
  server stops), then serve it: latency, or a hang when longer than the client waits;
- ``drop``: close the connection without an answer.

Faults act before authentication and before the request takes effect (a dropped submit
creates no run), unless ``after`` is set: then the request takes effect and its answer is
replaced or lost, which is how a client learns to live with lost responses. ``/emulator/``
itself is never faulted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.logs import get_logger

log = get_logger(__name__)

ADMIN_PREFIX = "/emulator/"
_DEFAULT_HANG_SECONDS = 3600.0

# error_code and message a workspace sends with each status; 401 and 403 carry the legacy
# integer code (reference section 2.1).
_STANDARD: dict[int, tuple[str | int, str]] = {
    400: ("INVALID_PARAMETER_VALUE", "Invalid parameter value."),
    401: (401, "Credential was not sent or was of an unsupported type for this API."),
    403: (403, "Invalid access token."),
    404: ("RESOURCE_DOES_NOT_EXIST", "The requested resource does not exist."),
    409: ("RESOURCE_CONFLICT", "The request conflicts with the state of the resource."),
    429: ("REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again."),
    500: ("INTERNAL_ERROR", "An internal error occurred."),
    501: ("NOT_IMPLEMENTED", "This API is not implemented."),
    502: ("BAD_GATEWAY", "Bad gateway."),
    503: ("TEMPORARILY_UNAVAILABLE", "The service at {path} is temporarily unavailable."),
    504: ("DEADLINE_EXCEEDED", "The request did not complete in time."),
}
# The token endpoint speaks OAuth, not the Databricks error model.
_OAUTH: dict[int, tuple[str, str]] = {
    400: ("invalid_request", "The request is missing a required parameter."),
    401: ("invalid_client", "Client authentication failed"),
}


class FaultSpec(BaseModel):
    """The body of POST /emulator/faults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = "*"
    method: str | None = None
    action: Literal["status", "hang", "drop"] = "status"
    status: int = Field(default=503, ge=400, le=599)
    retry_after: int | None = Field(default=None, ge=0)
    error_code: str | None = None
    message: str | None = None
    count: int | None = Field(default=None, ge=1)
    probability: float | None = Field(default=None, gt=0, le=1)
    seconds: float = Field(default=_DEFAULT_HANG_SECONDS, ge=0)
    after: bool = False

    @model_validator(mode="after")
    def _coherent(self) -> FaultSpec:
        if self.count is not None and self.probability is not None:
            raise ValueError("give count or probability, not both")
        if self.after and self.action == "hang":
            raise ValueError("after applies to status and drop, not hang")
        return self

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path == path or fnmatchcase(path, self.path)


@dataclass
class _Rule:
    id: str
    spec: FaultSpec
    remaining: int | None
    hits: int = 0


class FaultBook:
    """The active rules, in the order they were added; the first that fires wins."""

    def __init__(self, seed: int | None = None) -> None:
        self._rules: list[_Rule] = []
        self._ids = itertools.count(1)
        self._random = random.Random(seed)
        self._release = asyncio.Event()
        self.injected = 0

    def add(self, spec: FaultSpec) -> str:
        # A counted rule fires once unless told otherwise; a probabilistic one until cleared.
        remaining = None if spec.probability is not None else (spec.count or 1)
        rule = _Rule(f"fault-{next(self._ids)}", spec, remaining)
        self._rules.append(rule)
        log.info("emulator_fault_added", fault_id=rule.id, **spec.model_dump(exclude_none=True))
        return rule.id

    def remove(self, rule_id: str) -> bool:
        before = len(self._rules)
        self._rules = [r for r in self._rules if r.id != rule_id]
        return len(self._rules) < before

    def clear(self) -> None:
        self._rules.clear()
        self.release_hangs()

    def release_hangs(self) -> None:
        self._release.set()
        self._release = asyncio.Event()

    def rules(self) -> list[dict[str, Any]]:
        return [
            {"id": r.id, "remaining": r.remaining, "hits": r.hits, **r.spec.model_dump()}
            for r in self._rules
        ]

    def fire(self, method: str, path: str) -> FaultSpec | None:
        """The rule that fires for this call, its count spent; None when none does."""
        for rule in self._rules:
            if not rule.spec.matches(method, path):
                continue
            if rule.spec.probability is not None:
                if self._random.random() >= rule.spec.probability:
                    continue
            else:
                assert rule.remaining is not None
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.remove(rule)
            rule.hits += 1
            self.injected += 1
            return rule.spec
        return None

    async def hang(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), timeout=seconds)


def fault_response(spec: FaultSpec, path: str) -> web.Response:
    """The answer a workspace gives with ``spec.status``, overrides applied."""
    headers: dict[str, str] = {}
    retry_after = spec.retry_after
    if retry_after is None and spec.status == 429:
        retry_after = 1
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if path.startswith("/oidc/") and spec.status in _OAUTH:
        error, description = _OAUTH[spec.status]
        body: dict[str, Any] = {
            "error": spec.error_code or error,
            "error_description": spec.message or description,
        }
        return web.json_response(body, status=spec.status, headers=headers)
    code, message = _STANDARD.get(spec.status, ("UNKNOWN", "The request failed."))
    body = {
        "error_code": spec.error_code or code,
        "message": spec.message or message.format(path=path),
    }
    if spec.status in (401, 403):
        headers["X-Databricks-Reason-Phrase"] = body["message"]
    if spec.status == 429 or spec.status >= 500:
        body["details"] = [request_info()]
    return web.json_response(body, status=spec.status, headers=headers)


def request_info() -> dict[str, str]:
    return {
        "@type": "type.googleapis.com/google.rpc.RequestInfo",
        "request_id": str(uuid.uuid4()),
        "serving_data": "",
    }


def drop(request: web.Request) -> web.Response:
    """Cut the connection; the response returned is never written."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=499)


def faults_middleware(book: FaultBook) -> Any:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        spec = book.fire(request.method, request.path)
        if spec is None:
            return await handler(request)
        log.info(
            "emulator_fault_injected",
            method=request.method,
            path=request.path,
            action=spec.action,
            status=spec.status,
            after=spec.after,
        )
        if spec.action == "hang":
            await book.hang(spec.seconds)
            return await handler(request)
        if spec.after:
            with contextlib.suppress(web.HTTPException):
                await handler(request)
        if spec.action == "drop":
            return drop(request)
        return fault_response(spec, request.path)

    return middleware
