"""Redaction by value: the registry of held secrets and the upstream-text helper built on it."""

from __future__ import annotations

import timeit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import logs
from gateway.kube.status import parse_status
from gateway.secrets_registry import MASK, MIN_CHARS, SecretRegistry, remember


@pytest.mark.parametrize(
    ("held", "text", "expected"),
    [
        (["opaque-secret-1"], "got opaque-secret-1 back", f"got {MASK} back"),
        (["opaque-secret-1"], "opaque-secret-1opaque-secret-1", MASK + MASK),
        # The longest value wins where one contains another.
        (["abcdefgh", "abcdefgh-longer"], "x abcdefgh-longer y", f"x {MASK} y"),
        # Regex metacharacters in a value are literal.
        (["a.b*c+d?e(f)"], "a.b*c+d?e(f) and aXbbcdde", f"{MASK} and aXbbcdde"),
        # Too short to be a secret: prose keeps its words.
        (["short"], "a short note", "a short note"),
        ([], "nothing held", "nothing held"),
    ],
)
def test_scrub_replaces_every_held_value(held: list[str], text: str, expected: str) -> None:
    """Each held value of 8 characters or more is masked wherever it occurs, and only it."""
    registry = SecretRegistry()
    for value in held:
        registry.remember(value)
    assert registry.scrub(text) == expected


def test_registry_is_bounded_and_forgets_the_least_recently_used() -> None:
    """Past its bound the registry drops the value least recently remembered; a value seen
    again is kept, and the pattern follows every change."""
    registry = SecretRegistry(max_values=2)
    registry.remember("first-value")
    registry.remember("second-value")
    assert registry.scrub("second-value") == MASK
    registry.remember("first-value")  # used again: now the newest
    registry.remember("third-value")
    assert len(registry) == 2
    assert registry.scrub("first-value second-value third-value") == (f"{MASK} second-value {MASK}")


def test_redaction_of_logs_and_upstream_text_knows_held_values() -> None:
    """A held value is masked by the log redaction and by upstream_text, which also keeps
    upstream text to one line of at most 300 characters."""
    remember("zq-held-upstream-canary")
    assert logs.redact_text("echo zq-held-upstream-canary") == f"echo {MASK}"
    quoted = logs.upstream_text("line one\r\nzq-held-upstream-canary " + "x" * 1000)
    assert quoted.startswith(f"line one {MASK} x")
    assert len(quoted) == logs.UPSTREAM_MAX_CHARS + len("...")


def test_kubernetes_status_messages_are_redacted_and_capped() -> None:
    """A Status message quoting a held secret loses it, and is cut to the cap."""
    remember("zq-held-kube-canary")
    status = parse_status('{"message": "bad zq-held-kube-canary ' + "y" * 500 + '"}')
    assert status.message is not None
    assert "zq-held-kube-canary" not in status.message
    assert len(status.message) <= logs.UPSTREAM_MAX_CHARS + 3


def test_an_identifier_is_shown_as_given_and_a_secret_is_never_weakened() -> None:
    registry = SecretRegistry()
    registry.remember("0c47a1b2-0000-4000-8000-00000000106d", "0c47...106d")
    assert registry.scrub("sp 0c47a1b2-0000-4000-8000-00000000106d may not") == (
        "sp 0c47...106d may not"
    )
    registry.remember("dose-secret-value", "dose...alue")
    registry.remember("dose-secret-value")  # known as a secret too: masked whole
    registry.remember("dose-secret-value", "dose...alue")
    assert registry.scrub("x dose-secret-value y") == f"x {MASK} y"


def test_clean_texts_are_forgotten_when_a_value_is_learnt_or_all_are_forgotten() -> None:
    """``clean`` is replaced by an empty set when a new value is learnt and when every value
    is forgotten; a known value remembered again (each request's caller token) keeps it."""
    registry = SecretRegistry()
    registry.remember("zq-held-value-0002")
    registry.clean.add("a route")
    kept = registry.clean
    registry.remember("zq-held-value-0002")  # a refresh: nothing new to look for
    assert "a route" in registry.clean
    registry.remember("zq-held-value-0003")
    assert not registry.clean
    assert "a route" in kept  # replaced, not emptied: a scrub in flight writes to the old one
    registry.clean.add("a route")
    registry.forget_all()
    assert not registry.clean


def _scrubbed_by_hand(values: dict[str, str], text: str) -> str:
    # The definition scrub must keep: left to right, the longest held value at each position.
    out, i = [], 0
    while i < len(text):
        found = max((v for v in values if text.startswith(v, i)), key=len, default=None)
        if found is None:
            out.append(text[i])
            i += 1
        else:
            out.append(values[found])
            i += len(found)
    return "".join(out)


_PIECES = st.text(alphabet="abc-", min_size=1, max_size=14)


@settings(max_examples=400, deadline=None)
@given(
    held=st.lists(_PIECES, max_size=8),
    parts=st.lists(st.one_of(_PIECES, st.integers(0, 7)), max_size=12),
)
def test_scrub_masks_exactly_what_a_scan_of_every_position_would(
    held: list[str], parts: list[str | int]
) -> None:
    """The probe that lets most texts skip the scan never skips one holding a value: on texts
    made of held values (at any offset against the probes) and noise from the same small
    alphabet, scrub gives what checking every position for every value gives."""
    registry = SecretRegistry()
    for value in held:
        registry.remember(value)
    values = {v: MASK for v in held if len(v) >= MIN_CHARS}
    text = "".join(held[p % len(held)] if isinstance(p, int) and held else str(p) for p in parts)
    assert registry.scrub(text) == _scrubbed_by_hand(values, text)


def test_forgotten_prefixes_leave_no_probe_behind() -> None:
    """A value dropped from the bound is no longer found, and its windows are gone with it."""
    registry = SecretRegistry(max_values=1)
    registry.remember("first-value-1")
    registry.remember("other-value-2")
    assert registry.scrub("x first-value-1 other-value-2") == f"x first-value-1 {MASK}"
    assert set(registry._windows) == {"othe", "ther", "her-", "er-v", "r-va"}


def test_a_probe_costs_the_same_however_many_values_share_a_window() -> None:
    """Every PAT starts with "dapi": a text of "dapi" over and over (a request id may be one)
    costs no more with thousands of PATs held than with one."""

    def cost(registry: SecretRegistry) -> float:
        text = "dapi" * 32
        return min(timeit.repeat(lambda: registry.scrub(text), number=200, repeat=5))

    one, many = SecretRegistry(), SecretRegistry()
    one.remember(f"dapi{0:032x}")
    for i in range(3000):
        many.remember(f"dapi{i:04x}{i:028x}")  # 3000 prefixes, one window
    assert many.scrub("dapi" * 32) == "dapi" * 32
    assert cost(many) < 5 * cost(one)


@pytest.mark.parametrize("before", range(12))
@pytest.mark.parametrize("after", [0, 1, 3])
def test_a_value_is_found_at_every_offset_against_the_probes(before: int, after: int) -> None:
    """A shortest value is masked wherever it starts, up to the text's very end."""
    registry = SecretRegistry()
    registry.remember("q7-8char")
    text = "x" * before + "q7-8char" + "y" * after
    assert registry.scrub(text) == "x" * before + MASK + "y" * after


def test_a_scan_costs_the_same_however_many_tokens_share_a_header() -> None:
    """Every JWT of one issuer starts with the same 40-odd characters: a text repeating them
    costs no more to scrub with thousands of such tokens held than with one."""
    header = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0."

    def cost(registry: SecretRegistry) -> float:
        text = header * 4
        return min(timeit.repeat(lambda: registry.scrub(text), number=200, repeat=5))

    one, many = SecretRegistry(), SecretRegistry()
    one.remember(f"{header}eyJzdWIiOiIwIn0.{0:032x}")
    for i in range(3000):
        many.remember(f"{header}eyJzdWIiOiI{i}In0.{i:032x}")
    assert many.scrub(header * 4) == header * 4
    assert many.scrub(f"x {header}eyJzdWIiOiI7In0.{7:032x} y") == f"x {MASK} y"
    assert cost(many) < 5 * cost(one)
