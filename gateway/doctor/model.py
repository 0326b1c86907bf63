"""The tenant doctor's report, pure: a namespace's path as steps, each ok, failed or skipped.

A ``Step`` names what was looked at (``object``), what it found (``detail`` and ``facts``,
which never hold a token, secret or JWT) and, when it failed, the ``cause`` and the ``fix``.
A ``Report`` is the steps in the order they were walked; it is healthy when none failed. The
JSON of ``GET /v1/namespaces/{namespace}/identity`` is ``Report.view()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    title: str
    outcome: Outcome
    detail: str
    object: str | None = None
    cause: str | None = None
    fix: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "outcome": self.outcome,
            "detail": self.detail,
            "object": self.object,
            "cause": self.cause,
            "fix": self.fix,
            "facts": dict(self.facts),
        }


def ok(name: str, title: str, detail: str, **facts: Any) -> Step:
    return Step(name, title, "ok", detail, facts=facts)


def skipped(name: str, title: str, detail: str) -> Step:
    return Step(name, title, "skipped", detail)


def failed(name: str, title: str, *, obj: str, cause: str, fix: str, **facts: Any) -> Step:
    return Step(name, title, "failed", cause, object=obj, cause=cause, fix=fix, facts=facts)


@dataclass(frozen=True, slots=True)
class Report:
    namespace: str
    steps: tuple[Step, ...]

    @property
    def healthy(self) -> bool:
        return all(step.outcome != "failed" for step in self.steps)

    @property
    def first_failure(self) -> Step | None:
        return next((s for s in self.steps if s.outcome == "failed"), None)

    def view(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "healthy": self.healthy,
            "steps": [step.view() for step in self.steps],
        }


@dataclass(frozen=True, slots=True)
class Tenant:
    """One line of ``GET /v1/namespaces``: a namespace, how it is known, its identity's state."""

    namespace: str
    known_as: tuple[str, ...]
    kind: str | None
    origin: str | None
    state: Literal["ok", "refused"]
    reason: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "known_as": list(self.known_as),
            "kind": self.kind,
            "origin": self.origin,
            "state": self.state,
            "reason": self.reason,
        }
