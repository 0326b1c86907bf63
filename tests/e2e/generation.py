"""What the generated-request test's two APIs share: hostile inputs, callers, learned values.

``test_generated_requests`` sends /v1 requests derived from the OpenAPI document and
``compat_calls`` sends Databricks Jobs API requests, to one stack; both draw from the inputs
here, authenticate as the API-key callers here, and reuse the runs, cursors and page tokens
the stack handed out (``Pools``), so one API's runs are asked for through the other.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

# Inputs that once got a 5xx (issue 9): lone surrogates, a trailing newline, overflowing numbers.
ATTACK_TEXT = ("\ud800", "x\udfff", "team-a\n", "databricks-token\n", "9" * 40, "-1" + "0" * 30)
# Cursors whose number does not fit 64 bits, plain and base64-encoded (issue 9).
OVERFLOWING_CURSORS = (
    "9" * 400,
    "MTg0NDY3NDQwNzM3MDk1NTE2MTY5OTk5",
    "LTkyMjMzNzIwMzY4NTQ3NzU4MDk=",
)
# A URL cannot carry a lone surrogate (it has no UTF-8): paths and queries get the rest.
noise_text = st.text(min_size=1, max_size=24) | st.sampled_from(ATTACK_TEXT[2:])
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(ATTACK_TEXT),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(ATTACK_TEXT), inner, max_size=4)
    ),
    max_leaves=10,
)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``choices`` by weight; the first is what Hypothesis falls back to first."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


def as_json(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        # A lone surrogate: sent \u-escaped, which is valid JSON but not text (issue 9).
        return json.dumps(value).encode()


# --- callers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Callers:
    """Two API keys, as real clients send them (``Authorization: Bearer``): one for every
    namespace of the stack, which must name one, and one bound to a single namespace."""

    namespaces: tuple[str, ...]
    every: str = field(default_factory=lambda: "lgk_all_" + secrets.token_urlsafe(24))
    single: str = field(default_factory=lambda: "lgk_one_" + secrets.token_urlsafe(24))

    @property
    def single_namespace(self) -> str:
        return self.namespaces[1]

    def section(self) -> dict[str, Any]:
        """The gateway's ``callers`` settings admitting both keys (by sha256)."""

        def sha(key: str) -> str:
            return hashlib.sha256(key.encode()).hexdigest()

        return {
            "methods": ["api_key"],
            "api_keys": [
                {"name": "every", "sha256": sha(self.every), "namespaces": list(self.namespaces)},
                {
                    "name": "single",
                    "sha256": sha(self.single),
                    "namespaces": [self.single_namespace],
                },
            ],
        }

    def headers(self) -> st.SearchStrategy[list[tuple[str, str]]]:
        """Mostly the all-namespace key; sometimes none, a wrong one, or two credentials."""
        wrong = self.every[:-1] + ("A" if self.every[-1] != "A" else "B")
        return weighted(
            (12, st.just([("Authorization", f"Bearer {self.every}")])),
            (2, st.just([("Authorization", f"Bearer {self.single}")])),
            (1, st.just([("X-API-Key", self.every)])),
            (1, st.just([])),
            (1, st.just([("Authorization", f"Bearer {wrong}")])),
            (1, header_text.map(lambda v: [("Authorization", v)])),
            (1, st.just([("Authorization", f"Basic {self.every}")])),
            # Duplicate credential headers (issue 9): refused with a 400 naming the header.
            (1, st.just([("Authorization", f"Bearer {self.every}")] * 2)),
            (1, st.just([("Authorization", f"Bearer {self.every}"), ("X-API-Key", wrong)])),
            (1, st.just([("X-API-Key", self.every), ("X-API-Key", self.single)])),
        )

    def admits_everywhere(self, headers: tuple[tuple[str, str], ...]) -> bool:
        """Whether ``headers`` carry exactly the all-namespace key, once."""
        sent = [(k, v) for k, v in headers if k in ("Authorization", "X-API-Key")]
        return sent in ([("Authorization", f"Bearer {self.every}")], [("X-API-Key", self.every)])


# --- what the stack handed out --------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """A value the stack handed out earlier, by position: a (namespace, run id), a /v1 cursor,
    a runs/list page token.

    A ``foreign-run`` is a run asked for under the next namespace: another tenant's run.
    """

    pool: str
    index: int


@dataclass
class Pools:
    namespaces: list[str]
    runs: list[tuple[str, str]] = field(default_factory=list)
    cursors: list[str] = field(default_factory=list)
    page_tokens: list[str] = field(default_factory=list)
    created: Counter[str] = field(default_factory=Counter)
    compat_created: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    # (endpoint, status) of each facade answer; strays count as endpoint "stray".
    compat_statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    sent: int = 0
    compat_sent: int = 0
    # Requests for another namespace's run, by a caller who may act in both, checked.
    foreign_checked: int = 0

    def pick(self, known: Known) -> Any:
        pools: dict[str, list[Any]] = {"cursor": self.cursors, "page": self.page_tokens}
        items = pools.get(known.pool, self.runs)
        return items[known.index % len(items)] if items else None

    def run_for(self, known: Known) -> tuple[str, str] | None:
        """The (namespace, run id) ``known`` names; a foreign run under the next namespace."""
        picked: tuple[str, str] | None = self.pick(known)
        if picked is None or known.pool != "foreign-run":
            return picked
        namespace, run_id = picked
        at = self.namespaces.index(namespace) + 1
        return self.namespaces[at % len(self.namespaces)], run_id
