"""Grants and label selectors: which namespaces a caller may act for, labels read once."""

from __future__ import annotations

from typing import Any

from gateway.callers.grants import Authorizer, Grant, caller_for
from gateway.callers.types import Caller, Identity
from gateway.settings import GrantSettings, parse_selector
from tests.support.kube import FakeKube


def _grants(*grants: dict[str, Any]) -> list[Grant]:
    return [Grant.from_settings(GrantSettings.model_validate(g)) for g in grants]


def test_grants_apply_to_subjects_matching_their_glob() -> None:
    """A glob grant adds namespaces to every matching subject, and only to those."""
    grants = _grants({"subject": "system:serviceaccount:airflow:*", "namespaces": ["team-b"]})
    scheduler = Identity("system:serviceaccount:airflow:scheduler", "kubernetes", "airflow")
    other = Identity("system:serviceaccount:etl:runner", "kubernetes", "etl")
    assert caller_for(scheduler, grants).may_act_for("team-b")
    assert caller_for(scheduler, grants).may_act_for("airflow")
    assert not caller_for(other, grants).may_act_for("team-b")


def test_none_identities_may_act_everywhere() -> None:
    """The anonymous caller of method none may act for any namespace."""
    assert caller_for(Identity("anonymous", "none"), []).may_act_for("anything")


async def test_selectors_read_labels_once_and_refuse_unknown_namespaces() -> None:
    """A selector grant matches labelled namespaces; a missing one is refused; labels are
    cached so repeated checks read them once."""
    labels = FakeKube(labels={"team-a": {"tier": "batch"}, "team-b": {"tier": "web"}})
    authorizer = Authorizer(labels, cache_seconds=30)
    caller = Caller("apikey:batch", "api_key", selectors=(parse_selector("tier=batch"),))
    assert await authorizer.allows(caller, "team-a")
    assert await authorizer.allows(caller, "team-a")
    assert not await authorizer.allows(caller, "team-b")
    assert not await authorizer.allows(caller, "ghost")
    assert not await authorizer.allows(caller, "Not Valid")
    assert labels.label_reads == 3


async def test_names_are_decided_without_reading_labels() -> None:
    """A caller's own and granted names need no label read."""
    labels = FakeKube()
    authorizer = Authorizer(labels, cache_seconds=30)
    caller = Caller("x", "kubernetes", home_namespace="team-a", namespaces=frozenset({"team-b"}))
    assert await authorizer.allows(caller, "team-a")
    assert await authorizer.allows(caller, "team-b")
    assert not await authorizer.allows(caller, "team-c")
    assert labels.label_reads == 0
