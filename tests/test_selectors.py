"""Label selectors, the one parser of settings and informer: parsed and matched as the API
server does."""

from __future__ import annotations

import pytest

from gateway.selectors import LabelSelector, Requirement, SelectorError

ENABLED = "lakegate.io/databricks-enabled"


@pytest.mark.parametrize(
    ("text", "requirement"),
    [
        (f"{ENABLED}=true", Requirement(ENABLED, "=", ("true",))),
        (f"{ENABLED}==true", Requirement(ENABLED, "=", ("true",))),
        (f"{ENABLED} != false", Requirement(ENABLED, "!=", ("false",))),
        ("tier in (gold, silver)", Requirement("tier", "in", ("gold", "silver"))),
        ("tier notin (bronze)", Requirement("tier", "notin", ("bronze",))),
        (ENABLED, Requirement(ENABLED, "exists")),
        (f"!{ENABLED}", Requirement(ENABLED, "!exists")),
    ],
)
def test_parse_each_form(text: str, requirement: Requirement) -> None:
    """Every selector form the API server accepts parses into one requirement."""
    assert LabelSelector.parse(text).requirements == (requirement,)


def test_commas_inside_sets_do_not_split_requirements() -> None:
    """A comma is AND between requirements but a separator inside an in/notin set."""
    selector = LabelSelector.parse("a=b,tier in (gold,silver),!c")
    assert [r.key for r in selector.requirements] == ["a", "tier", "c"]


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("a in (x,y)", {"a": "y"}, True),
        ("a in (x, y)", {"a": "y"}, True),
        ("a notin (x,y)", {"a": "z"}, True),
        ("a notin (x,y)", {"a": "y"}, False),
        ("a notin (x,y)", {}, True),
        ("a", {"a": ""}, True),
        ("!a", {"a": "1"}, False),
        ("a=b,c=d", {"a": "b", "c": "d"}, True),
        ("a=b,c=d", {"a": "b"}, False),
        ("a=b,!c", {"a": "b"}, True),
        ("a=b,!c", {"a": "b", "c": "x"}, False),
        ("example.com/tier=batch", {"example.com/tier": "batch"}, True),
        ("", {"anything": "x"}, True),
    ],
)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    """Matching follows the API server: != and notin also match an absent label."""
    assert LabelSelector.parse(text).matches(labels) is expected


def test_text_round_trips() -> None:
    """The text sent to the server parses back to the same selector."""
    selector = LabelSelector.parse("a=b, tier in (gold,silver), !c, d")
    assert LabelSelector.parse(selector.text()) == selector
    assert selector.text() == "a=b,tier in (gold,silver),!c,d"


def test_equals_builds_sorted_equality_requirements() -> None:
    """A selector for a set of labels is their conjunction, in a stable order."""
    selector = LabelSelector.equals({"z": "1", ENABLED: "true"})
    assert selector.text() == f"{ENABLED}=true,z=1"


@pytest.mark.parametrize(
    "text",
    ["a=b,,c=d", "a in (b", "a in b)", "Bad Key=x", "a=has space", "a=" + "x" * 64, "/a=b"],
)
def test_invalid_selectors_are_refused(text: str) -> None:
    """A selector the API server would refuse fails when lakegate starts, not at each list."""
    with pytest.raises(SelectorError):
        LabelSelector.parse(text)


@pytest.mark.parametrize(
    "labels",
    [{"team": "data\n"}, {"team\n": "data"}, {"lakegate.io/databricks-enabled": "true\n"}],
)
def test_a_label_key_or_value_with_a_trailing_newline_is_refused(labels: dict[str, str]) -> None:
    """Patterns anchor at the very end (\\Z): '$' would let a trailing newline through."""
    with pytest.raises(SelectorError):
        LabelSelector.equals(labels)
