"""Label and field selectors, parsed from query strings as the apiserver parses them.

Label selectors (apimachinery ``labels.Parse``): requirements joined by commas (AND); each one
``k``, ``!k``, ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k>1``,
``k<1``. ``!=`` and ``notin`` also match objects without the key. Field selectors on
ServiceAccounts support ``metadata.name`` and ``metadata.namespace`` with ``=``, ``==``, ``!=``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.emulator.kubernetes.config import is_label_value, is_qualified_name
from gateway.emulator.kubernetes.objects import ServiceAccount


class SelectorError(ValueError):
    """The selector does not parse; the message is what the 400 Status says."""


_SET = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_COMPARE = re.compile(r"^(?P<key>[^=!<>\s]+)\s*(?P<op>==|=|!=|>|<)\s*(?P<value>.*)$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # exists, !exists, =, !=, in, notin, gt, lt
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.op:
            case "exists":
                return present
            case "!exists":
                return not present
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case _:
                return present and _compare(self.op, value, next(iter(self.values)))


def _compare(op: str, value: str | None, bound: str) -> bool:
    try:
        number = int(value or "")
    except ValueError:
        return False
    return number > int(bound) if op == "gt" else number < int(bound)


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses, which separate the values of ``in`` sets."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _checked_key(key: str, requirement: str) -> str:
    if not is_qualified_name(key):
        raise SelectorError(
            f"unable to parse requirement: invalid label key {key!r}: {requirement}"
        )
    return key


def _checked_values(values: list[str], requirement: str) -> frozenset[str]:
    for value in values:
        if not is_label_value(value):
            raise SelectorError(
                f"unable to parse requirement: invalid label value {value!r}: {requirement}"
            )
    return frozenset(values)


def _requirement(text: str) -> Requirement:
    req = text.strip()
    if not req:
        raise SelectorError("found '', expected: identifier")
    if req.startswith("!"):
        return Requirement(_checked_key(req[1:].strip(), req), "!exists")
    if m := _SET.match(req):
        values = [v.strip() for v in m["values"].split(",")]
        if values == [""]:
            raise SelectorError(
                f"unable to parse requirement: for 'in', 'notin' operators, "
                f"values set can't be empty: {req}"
            )
        return Requirement(_checked_key(m["key"], req), m["op"], _checked_values(values, req))
    if m := _COMPARE.match(req):
        key, op, value = _checked_key(m["key"], req), m["op"], m["value"].strip()
        if op in (">", "<"):
            if not re.fullmatch(r"-?\d+", value):
                raise SelectorError(f"unable to parse requirement: {value!r} is not an integer")
            return Requirement(key, "gt" if op == ">" else "lt", frozenset([value]))
        return Requirement(key, "!=" if op == "!=" else "=", _checked_values([value], req))
    return Requirement(_checked_key(req, req), "exists")


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """An empty or absent selector selects everything."""
        if text is None or not text.strip():
            return cls()
        return cls(tuple(_requirement(part) for part in _split(text)))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


_FIELDS: dict[str, Callable[[ServiceAccount], str]] = {
    "metadata.name": lambda sa: sa.name,
    "metadata.namespace": lambda sa: sa.namespace,
}
_FIELD_TERM = re.compile(r"^(?P<field>[^=!]+?)\s*(?P<op>==|=|!=)\s*(?P<value>[^=!]*)$")


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[tuple[str, bool, str], ...] = ()  # (field, equal, value)

    @classmethod
    def parse(cls, text: str | None) -> FieldSelector:
        if text is None or not text.strip():
            return cls()
        terms = []
        for part in text.split(","):
            m = _FIELD_TERM.match(part.strip())
            if m is None:
                raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
            name = m["field"].strip()
            if name not in _FIELDS:
                raise SelectorError(f"field label not supported: {name}")
            terms.append((name, m["op"] != "!=", m["value"].strip()))
        return cls(tuple(terms))

    def matches(self, sa: ServiceAccount) -> bool:
        return all((_FIELDS[f](sa) == value) == equal for f, equal, value in self.terms)


@dataclass(frozen=True)
class Selection:
    """What one list or watch asks for: a namespace (or all), labels and fields."""

    namespace: str | None = None
    labels: LabelSelector = LabelSelector()
    fields: FieldSelector = FieldSelector()

    def matches(self, sa: ServiceAccount) -> bool:
        return (
            (self.namespace is None or sa.namespace == self.namespace)
            and self.labels.matches(sa.labels)
            and self.fields.matches(sa)
        )
