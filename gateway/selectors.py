"""Kubernetes label selectors: the one parser, for the settings and the Kubernetes edge alike.

The grammar is the one the API server accepts: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
``k notin (a,b)``, ``k``, ``!k``, joined by commas (AND). There is no OR: several selectors
need several watches. Matching follows the API server too: ``!=`` and ``notin`` also match an
absent label.

The informer sends a selector's text to the server and matches again on each event, so that
a MODIFIED object that no longer matches (a label removed) leaves its cache; the callers'
grants match a namespace's labels with it. A typo raises ``SelectorError`` (a ``ValueError``)
naming the part that is wrong, so settings fail at start-up with the key that holds it.

Imports nothing of lakegate, so every layer may use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Operator = Literal["=", "!=", "in", "notin", "exists", "!exists"]

# A label key is an optional DNS-subdomain prefix and "/", then a name of up to 63 characters.
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY_RE = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}\Z")
_VALUE_RE = re.compile(rf"^({_NAME})?\Z")
_SET_RE = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\Z")
_CMP_RE = re.compile(r"^(?P<key>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>\S*)\Z")


class SelectorError(ValueError):
    """The selector text is not one the API server would accept."""


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case "exists":
                return present
            case "!exists":
                return not present
        raise AssertionError(self.operator)  # pragma: no cover - Literal is exhaustive

    def text(self) -> str:
        match self.operator:
            case "=" | "!=":
                return f"{self.key}{self.operator}{self.values[0]}"
            case "in" | "notin":
                return f"{self.key} {self.operator} ({','.join(self.values)})"
            case "exists":
                return self.key
            case "!exists":
                return f"!{self.key}"
        raise AssertionError(self.operator)  # pragma: no cover - Literal is exhaustive


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A conjunction of requirements; the empty selector matches everything."""

    requirements: tuple[Requirement, ...]

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        parts = [p.strip() for p in _split_top_level(text)]
        if parts == [""]:
            return cls(())
        return cls(tuple(_parse_requirement(p) for p in parts))

    @classmethod
    def equals(cls, labels: Mapping[str, str]) -> LabelSelector:
        """The selector for objects carrying every one of ``labels``."""
        reqs = []
        for key, value in sorted(labels.items()):
            _check_key(key)
            _check_value(value)
            reqs.append(Requirement(key, "=", (value,)))
        return cls(tuple(reqs))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def text(self) -> str:
        return ",".join(r.text() for r in self.requirements)

    def __str__(self) -> str:
        return self.text()


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside the parentheses of an in/notin set."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"'{text}' is not a label selector: unbalanced ')'")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise SelectorError(f"'{text}' is not a label selector: unbalanced '('")
    parts.append("".join(current))
    return parts


def _parse_requirement(part: str) -> Requirement:
    if not part:
        raise SelectorError("the selector has an empty requirement (two commas in a row?)")
    if (m := _SET_RE.match(part)) is not None:
        values = tuple(v.strip() for v in m["values"].split(","))
        for value in values:
            _check_value(value)
        op: Operator = "in" if m["op"] == "in" else "notin"
        return Requirement(_check_key(m["key"]), op, values)
    if (m := _CMP_RE.match(part)) is not None:
        value = _check_value(m["value"])
        return Requirement(_check_key(m["key"]), "!=" if m["op"] == "!=" else "=", (value,))
    if part.startswith("!"):
        return Requirement(_check_key(part[1:].strip()), "!exists")
    return Requirement(_check_key(part), "exists")


def _check_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if not _KEY_RE.match(key) or len(name) > 63 or len(prefix) > 253:
        raise SelectorError(f"'{key}' is not a label key")
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise SelectorError(f"'{value}' is not a label value")
    return value
