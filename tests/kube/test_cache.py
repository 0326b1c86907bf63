"""The informer's cache: ServiceAccounts from several sources, read merged, changes announced."""

from __future__ import annotations

import pytest

from gateway.kube.accounts import MalformedObject, ServiceAccountRef
from gateway.kube.cache import AccountCache, AccountChange


def sa(name: str, rv: str = "1", ns: str = "tenant-a", **labels: str) -> ServiceAccountRef:
    return ServiceAccountRef(ns, name, uid=f"uid-{name}", resource_version=rv, labels=labels)


@pytest.fixture
def changes() -> list[AccountChange]:
    return []


@pytest.fixture
def cache(changes: list[AccountChange]) -> AccountCache:
    return AccountCache([changes.append])


def test_from_raw_keeps_identity_labels_and_annotations() -> None:
    """A ServiceAccount's JSON becomes a small value with read-only labels and annotations."""
    ref = ServiceAccountRef.from_raw(
        {
            "metadata": {
                "name": "etl",
                "namespace": "tenant-a",
                "uid": "u-1",
                "resourceVersion": "42",
                "labels": {"lakegate.io/databricks-enabled": "true"},
                "annotations": {"lakegate.io/audience": "databricks"},
            }
        }
    )
    assert ref.key == ("tenant-a", "etl")
    assert (ref.uid, ref.resource_version) == ("u-1", "42")
    assert ref.labels == {"lakegate.io/databricks-enabled": "true"}
    assert ref.annotations["lakegate.io/audience"] == "databricks"
    with pytest.raises(TypeError):
        ref.labels["x"] = "y"  # type: ignore[index]


@pytest.mark.parametrize("obj", [{}, {"metadata": {"name": "x"}}, {"metadata": {"namespace": "n"}}])
def test_from_raw_refuses_objects_without_namespace_and_name(obj: dict[str, object]) -> None:
    """An object without the key the cache needs is refused, not stored under a blank key."""
    with pytest.raises(MalformedObject):
        ServiceAccountRef.from_raw(obj)


def test_upsert_then_delete_announces_added_and_deleted(
    cache: AccountCache, changes: list[AccountChange]
) -> None:
    """Listeners hear an added account and its deletion."""
    cache.upsert("s1", sa("etl"))
    cache.delete("s1", ("tenant-a", "etl"))
    assert [c.kind for c in changes] == ["added", "deleted"]
    assert cache.get("tenant-a", "etl") is None


def test_same_view_again_announces_nothing(
    cache: AccountCache, changes: list[AccountChange]
) -> None:
    """A relist that finds nothing new is silent."""
    cache.replace("s1", [sa("etl")])
    cache.replace("s1", [sa("etl")])
    assert len(changes) == 1


def test_replace_removes_what_the_new_list_lacks(cache: AccountCache) -> None:
    """A relist replaces the source's content: accounts gone while unwatched disappear."""
    cache.replace("s1", [sa("a"), sa("b")])
    cache.replace("s1", [sa("b", rv="2")])
    assert [a.name for a in cache.in_namespace("tenant-a")] == ["b"]
    assert cache.get("tenant-a", "b") == sa("b", rv="2")


def test_replace_of_one_namespace_leaves_the_others(cache: AccountCache) -> None:
    """A fallback read of one namespace does not touch accounts elsewhere."""
    cache.replace("s1", [sa("a"), sa("b", ns="tenant-b")])
    cache.replace("s1", [], namespace="tenant-a")
    assert cache.get("tenant-a", "a") is None
    assert cache.get("tenant-b", "b") is not None


def test_account_in_two_sources_stays_until_both_drop_it(
    cache: AccountCache, changes: list[AccountChange]
) -> None:
    """An account two selectors pick remains while either still picks it."""
    cache.upsert("lakegate", sa("etl", rv="5"))
    cache.upsert("flyte", sa("etl", rv="5"))
    cache.delete("lakegate", ("tenant-a", "etl"))
    assert cache.get("tenant-a", "etl") is not None
    cache.drop_source("flyte")
    assert cache.get("tenant-a", "etl") is None
    assert [c.kind for c in changes] == ["added", "deleted"]


def test_merged_view_is_the_newest_resource_version(cache: AccountCache) -> None:
    """Two sources' views of one account read as the fresher one."""
    cache.upsert("s1", sa("etl", rv="7", team="old"))
    cache.upsert("s2", sa("etl", rv="9", team="new"))
    cache.upsert("s3", sa("etl", rv="8", team="mid"))
    got = cache.get("tenant-a", "etl")
    assert got is not None
    assert got.labels["team"] == "new"


def test_modified_is_announced_with_before_and_after(
    cache: AccountCache, changes: list[AccountChange]
) -> None:
    """A changed account is one 'modified' change carrying both views."""
    cache.upsert("s1", sa("etl", rv="1"))
    cache.upsert("s1", sa("etl", rv="2"))
    last = changes[-1]
    assert last.kind == "modified"
    assert last.before is not None
    assert last.after is not None
    assert (last.before.resource_version, last.after.resource_version) == ("1", "2")


def test_failing_listener_does_not_stop_the_others() -> None:
    """One listener's exception is logged; the cache and the other listeners go on."""
    heard: list[AccountChange] = []

    def broken(_: AccountChange) -> None:
        raise RuntimeError("listener bug")

    cache = AccountCache([broken, heard.append])
    cache.upsert("s1", sa("etl"))
    assert len(heard) == 1
    assert cache.count() == 1
