"""What can go wrong calling lakegate's REST API, as ``LakegateClient`` raises it.

aiohttp's exceptions are translated in ``gateway.cli.client`` and nowhere else:

    LakegateError
    └── GatewayClientError      the gateway could not serve a call
        ├── ApiError            it answered with a problem (status, title, detail, request_id)
        ├── GatewayUnreachable  no answer: refused, dropped or timed out (connect_failed)
        └── UnexpectedResponse  a 2xx answer that is not the API's JSON (a wrong --url?)
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from gateway.errors import LakegateError

# RFC 9457's members and our request_id; anything else a problem carries is an extension.
PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "request_id"})


class GatewayClientError(LakegateError):
    """The gateway could not serve a call made through ``LakegateClient``."""

    title = "Gateway call failed"


class ApiError(GatewayClientError):
    """The gateway answered with an error status, usually as application/problem+json.

    ``problem`` keeps every member the gateway sent, extensions included.
    """

    def __init__(
        self, status: int, problem: Mapping[str, Any], *, retry_after: float | None = None
    ) -> None:
        self.status = status
        self.problem = dict(problem)
        self.title = _text(problem.get("title")) or _reason(status)
        self.detail = _text(problem.get("detail"))
        self.request_id = _text(problem.get("request_id"))
        self.retry_after = retry_after
        self.transient = status == 429 or status >= 500
        super().__init__(f"{status} {self.title}" + (f": {self.detail}" if self.detail else ""))

    @property
    def extensions(self) -> dict[str, Any]:
        """The members beyond RFC 9457's and our request_id, such as a field in error."""
        return {k: v for k, v in self.problem.items() if k not in PROBLEM_MEMBERS}

    def fields(self) -> dict[str, object]:
        return {"status": self.status, "request_id": self.request_id, **self.extensions}


class GatewayUnreachable(GatewayClientError):
    """No answer came back; ``connect_failed`` when nothing was listening at all."""

    transient = True

    def __init__(self, message: str, *, url: str, connect_failed: bool) -> None:
        super().__init__(message)
        self.url = url
        self.connect_failed = connect_failed


class UnexpectedResponse(GatewayClientError):
    """A success status with a body that is not what the API sends."""


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
