"""Who is calling, what they ask to do, and whether RBAC lets them.

``request_info`` reads the verb, resource and namespace from the URL as the apiserver's
RequestInfoFactory does, so authorization happens before the handler looks anything up (a
denied caller learns nothing about what exists). RBAC allows everything by default; the
admin API adds deny rules to simulate a missing Role.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from gateway.emulator.kubernetes.status import StatusError, qualified

_FALSE = ("false", "0")


def query_bool(query: Mapping[str, str], name: str) -> bool:
    """Absent, ``0`` and any case of ``false`` are false; any other value is true."""
    value = query.get(name)
    return value is not None and value.lower() not in _FALSE


@dataclass(frozen=True)
class RequestInfo:
    verb: str
    path: str
    is_resource: bool = False
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    @property
    def full_resource(self) -> str:
        """``serviceaccounts/token`` for a subresource, as RBAC rules name it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def forbidden_message(self, user: str) -> str:
        if not self.is_resource:
            return f'forbidden: User "{user}" cannot {self.verb} path "{self.path}"'
        subject = qualified(self.resource, self.group)
        if self.name:
            subject += f' "{self.name}"'
        scope = f'in the namespace "{self.namespace}"' if self.namespace else "at the cluster scope"
        return (
            f'{subject} is forbidden: User "{user}" cannot {self.verb} resource '
            f'"{self.full_resource}" in API group "{self.group}" {scope}'
        )


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def request_info(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    """The verb and resource a request is about; non-resource for paths outside the API."""
    lowered = method.upper()
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return RequestInfo(verb=lowered.lower(), path=path)
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
        if not rest:  # the namespace object itself
            rest = ["namespaces", namespace]
            namespace = ""
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if lowered == "GET":
        watching = query_bool(query, "watch")
        verb = "get" if name else ("watch" if watching else "list")
    elif lowered == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _VERBS.get(lowered, lowered.lower())
    return RequestInfo(verb, path, True, group, resource, subresource, namespace, name)


@dataclass(frozen=True)
class User:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()


ANONYMOUS = User("system:anonymous", groups=("system:unauthenticated",))


@dataclass(frozen=True)
class DenyRule:
    """Refuse ``verb`` on ``resource`` (``serviceaccounts/token`` for a subresource, a path
    for non-resource URLs); narrowed by namespace, object name and user when they are set.
    ``*`` as verb or resource matches any."""

    id: str
    verb: str
    resource: str
    namespace: str | None = None
    name: str | None = None
    user: str | None = None

    def matches(self, info: RequestInfo, user: User) -> bool:
        target = info.full_resource if info.is_resource else info.path
        return (
            self.verb in ("*", info.verb)
            and self.resource in ("*", target)
            and (self.namespace is None or self.namespace == info.namespace)
            and (self.name is None or self.name == info.name)
            and (self.user is None or self.user == user.username)
        )

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


class Rbac:
    def __init__(self) -> None:
        self._rules: dict[str, DenyRule] = {}
        self._ids = itertools.count(1)

    def deny(
        self,
        verb: str,
        resource: str,
        *,
        namespace: str | None = None,
        name: str | None = None,
        user: str | None = None,
    ) -> str:
        rule_id = f"deny-{next(self._ids)}"
        self._rules[rule_id] = DenyRule(rule_id, verb, resource, namespace, name, user)
        return rule_id

    def allow(self, rule_id: str | None = None) -> int:
        """Remove one deny rule, or all of them; how many were removed."""
        if rule_id is None:
            removed = len(self._rules)
            self._rules.clear()
            return removed
        return 1 if self._rules.pop(rule_id, None) is not None else 0

    def rules(self) -> list[DenyRule]:
        return list(self._rules.values())

    def check(self, info: RequestInfo, user: User) -> None:
        """Raise the 403 the apiserver gives when no rule grants the request."""
        if any(rule.matches(info, user) for rule in self._rules.values()):
            raise StatusError(
                403,
                info.forbidden_message(user.username),
                name=info.name or None,
                resource=info.resource or None,
                group=info.group,
            )
