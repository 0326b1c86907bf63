"""The values every part of caller authentication shares: who was proven, and who may act.

``Identity`` is what a credential proves (cached per credential); ``Caller`` is that identity
with the operator's current grants applied (built per request, so a reload of the grants
takes effect on the next request even for a cached token).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gateway.errors import LakegateError
from gateway.selectors import LabelSelector

Method = Literal["kubernetes", "api_key", "jwt", "none"]

# Subjects come from signed claims and usernames; bounded so a log line stays a line.
MAX_SUBJECT_CHARS = 256


@dataclass(frozen=True, slots=True)
class Identity:
    """What a credential proved: a subject and the namespaces the credential itself binds."""

    subject: str
    method: Method
    home_namespace: str | None = None
    namespaces: frozenset[str] = frozenset()
    selectors: tuple[LabelSelector, ...] = ()
    # Where a client that names no namespace acts (an API key's ``default_namespace``).
    default_namespace: str | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller and every namespace it may act for.

    ``may_act_for`` answers from names alone (home, bound and granted namespaces);
    ``selectors`` may grant more, which only ``authorize`` can check because it needs the
    namespace's labels.
    """

    subject: str
    method: Method
    home_namespace: str | None = None
    namespaces: frozenset[str] = field(default_factory=frozenset)
    selectors: tuple[LabelSelector, ...] = ()
    all_namespaces: bool = False
    default_namespace: str | None = None

    def may_act_for(self, namespace: str) -> bool:
        return (
            self.all_namespaces or namespace == self.home_namespace or namespace in self.namespaces
        )


class Refused(Exception):
    """A credential was presented and refused; ``reason`` is safe to log and to show.

    Authenticators raise it; ``authorize`` logs it and answers ``Unauthenticated``, so it never
    reaches the problem middleware.
    """

    def __init__(self, reason: str, *, method: Method | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        # Which method refused it, when the credential got as far as one.
        self.method = method


def bounded(subject: str) -> str:
    return subject if len(subject) <= MAX_SUBJECT_CHARS else subject[:MAX_SUBJECT_CHARS] + "…"


class CredentialChecksBusy(LakegateError):
    """Too many credentials nobody presented before are waiting to be checked. The credential
    may well be valid, so this is an outage answer (503 with Retry-After), never a 401."""

    status = 503
    title = "Too many credentials to check"
    transient = True

    def __init__(self, what: str, retry_after: float) -> None:
        super().__init__(
            f"The gateway is checking too many unknown {what} at once; retry after the delay given."
        )
        self.retry_after = retry_after
