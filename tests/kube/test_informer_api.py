"""The ServiceAccount informer against the fake Kubernetes API: every change shows within
seconds, without a restart, through label changes, deletions, 410 Gone and RBAC refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from structlog.testing import capture_logs

from gateway.emulator.kubernetes import KubeApiServer
from gateway.kube import (
    AccountChange,
    Backoff,
    InformerOptions,
    KubeClient,
    KubeForbidden,
    ServiceAccountInformer,
)
from tests.fixtures.kube_api import AUDIENCE_ANNOTATION, IDENTITY_LABEL, TENANT_A, TENANT_B

FLYTE_LABEL = "flyte.org/databricks-enabled"
LAKEGATE = f"{IDENTITY_LABEL}=true"
FLYTE = f"{FLYTE_LABEL}=true"
OPTIONS = InformerOptions(
    watch_timeout_seconds=5,
    resync_seconds=600,
    fallback_ttl_seconds=0.3,
    forbidden_retry_seconds=600,
    backoff=Backoff(initial=0.05, maximum=0.5),
)
DEADLINE = 5.0

InformerFactory = Callable[..., Awaitable[ServiceAccountInformer]]


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until ``check`` holds, polling; fail after DEADLINE seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"not within {DEADLINE} s: {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def start_informer(kube: KubeClient) -> AsyncIterator[InformerFactory]:
    """Start informers on the test's KubeClient, each ready; close them all when it ends."""
    started: list[ServiceAccountInformer] = []

    async def start(**kwargs: object) -> ServiceAccountInformer:
        kwargs.setdefault("selectors", [LAKEGATE])
        kwargs.setdefault("options", OPTIONS)
        informer = kube.service_account_informer(**kwargs)  # type: ignore[arg-type]
        started.append(informer)
        informer.start()
        await asyncio.wait_for(informer.ready.wait(), DEADLINE)
        return informer

    # Whoever makes an informer closes it; the KubeClient only closes its ApiClient.
    try:
        yield start
    finally:
        for informer in started:
            await informer.aclose()


async def present(informer: ServiceAccountInformer, ns: str, name: str) -> bool:
    return await informer.get(ns, name) is not None


async def test_initial_list_holds_the_labelled_accounts(start_informer: InformerFactory) -> None:
    """After the first list the labelled ServiceAccounts, with annotations, are known."""
    informer = await start_informer()
    billing = await informer.get(TENANT_A, "billing-api")
    assert billing is not None
    assert billing.annotations[AUDIENCE_ANNOTATION] == "databricks"
    assert billing.uid
    assert await informer.get(TENANT_A, "default") is None
    assert [a.name for a in await informer.in_namespace(TENANT_B)] == ["etl"]
    assert informer.status.mode == "watching"


async def test_label_added_then_removed(
    start_informer: InformerFactory, kube_api: KubeApiServer
) -> None:
    """Labelling an account makes it appear; removing the label makes it disappear."""
    informer = await start_informer()
    kube_api.label_service_account(TENANT_A, "default", {IDENTITY_LABEL: "true"})
    await eventually(lambda: present(informer, TENANT_A, "default"), "labelled SA appears")
    kube_api.label_service_account(TENANT_A, "default", {IDENTITY_LABEL: None})
    await eventually(lambda: _absent(informer, TENANT_A, "default"), "unlabelled SA disappears")


async def _absent(informer: ServiceAccountInformer, ns: str, name: str) -> bool:
    return not await present(informer, ns, name)


async def test_annotation_change_is_seen(
    start_informer: InformerFactory, kube_api: KubeApiServer
) -> None:
    """A changed audience annotation reaches the cache."""
    informer = await start_informer()
    kube_api.annotate_service_account(TENANT_A, "billing-api", {AUDIENCE_ANNOTATION: "other"})

    async def updated() -> bool:
        account = await informer.get(TENANT_A, "billing-api")
        return account is not None and account.annotations.get(AUDIENCE_ANNOTATION) == "other"

    await eventually(updated, "annotation change")


async def test_deleted_account_is_gone(
    start_informer: InformerFactory, kube_api: KubeApiServer
) -> None:
    """A deleted ServiceAccount leaves the cache; listeners hear it."""
    heard: list[AccountChange] = []
    informer = await start_informer(listeners=[heard.append])
    kube_api.delete_service_account(TENANT_B, "etl")
    await eventually(lambda: _absent(informer, TENANT_B, "etl"), "deleted SA is gone")
    assert heard[-1].kind == "deleted"
    assert heard[-1].account.name == "etl"


async def test_expired_watch_relists_and_stays_consistent(
    start_informer: InformerFactory, kube_api: KubeApiServer
) -> None:
    """After 410 Gone the informer relists: changes made around the expiry all show."""
    informer = await start_informer()
    await eventually(_async(lambda: kube_api.open_watches == 1), "the watch is open")
    with capture_logs() as logs:
        assert kube_api.expire_watches() == 1
        kube_api.delete_service_account(TENANT_B, "etl")
        kube_api.create_service_account(TENANT_A, "late", labels={IDENTITY_LABEL: "true"})
        await eventually(lambda: _absent(informer, TENANT_B, "etl"), "deleted SA is gone")
        await eventually(lambda: present(informer, TENANT_A, "late"), "new SA appears")
        # The relisted informer watches on: later changes arrive as events again.
        kube_api.label_service_account(TENANT_A, "default", {IDENTITY_LABEL: "true"})
        await eventually(lambda: present(informer, TENANT_A, "default"), "change after relist")
    assert any(e["event"] == "kube_informer_relist" and e["reason"] == "expired" for e in logs)
    assert informer.status.reflectors[0].relists >= 1
    assert informer.status.mode == "watching"


async def test_resume_from_compacted_history_relists(
    start_informer: InformerFactory, kube_api: KubeApiServer
) -> None:
    """A reconnect whose resourceVersion was compacted away gets 410, relists, watches on."""
    informer = await start_informer()
    await eventually(_async(lambda: kube_api.open_watches == 1), "the watch is open")
    # An unlabelled change moves the cluster past the last version the watch saw.
    kube_api.create_service_account(TENANT_B, "unlabelled")
    kube_api.compact_watch_history()
    kube_api.close_watches()

    async def relisted() -> bool:
        return informer.status.reflectors[0].relists == 1

    await eventually(relisted, "relist after 410 on reconnect")
    kube_api.create_service_account(TENANT_B, "nightly", labels={IDENTITY_LABEL: "true"})
    await eventually(lambda: present(informer, TENANT_B, "nightly"), "SA after relist")


async def test_two_selectors_merge(
    start_informer: InformerFactory, kube_api: KubeApiServer
) -> None:
    """Flyte's label works alongside lakegate's; an account keeps either label to stay."""
    informer = await start_informer(selectors=[LAKEGATE, FLYTE])
    kube_api.create_service_account(TENANT_A, "flyte-sa", labels={FLYTE_LABEL: "true"})
    await eventually(lambda: present(informer, TENANT_A, "flyte-sa"), "flyte-labelled SA")
    kube_api.label_service_account(TENANT_B, "etl", {FLYTE_LABEL: "true"})
    kube_api.label_service_account(TENANT_B, "etl", {IDENTITY_LABEL: None})
    await asyncio.sleep(0.3)
    assert await present(informer, TENANT_B, "etl")
    kube_api.label_service_account(TENANT_B, "etl", {FLYTE_LABEL: None})
    await eventually(lambda: _absent(informer, TENANT_B, "etl"), "both labels removed")


async def test_namespace_scope(start_informer: InformerFactory, kube_api: KubeApiServer) -> None:
    """With a namespace list only those namespaces are watched and served."""
    informer = await start_informer(namespaces=[TENANT_A])
    assert await informer.get(TENANT_B, "etl") is None
    kube_api.create_service_account(TENANT_A, "scoped", labels={IDENTITY_LABEL: "true"})
    await eventually(lambda: present(informer, TENANT_A, "scoped"), "SA in scope")
    assert informer.status.reflectors[0].namespace == TENANT_A


async def test_forbidden_watch_falls_back_to_ttl_reads(
    start_informer: InformerFactory, kube_api: KubeApiServer
) -> None:
    """When watching is forbidden, reads go to the API, cached for the TTL, and it says so."""
    informer = await start_informer()
    await eventually(_async(lambda: kube_api.open_watches == 1), "the watch is open")
    kube_api.deny("watch", "serviceaccounts")
    with capture_logs() as logs:
        kube_api.close_watches()

        async def in_fallback() -> bool:
            return informer.status.mode == "fallback"

        await eventually(in_fallback, "informer in fallback")
        assert any(e["event"] == "kube_informer_fallback" for e in logs)
        assert "cannot watch" in (informer.status.reflectors[0].last_error or "")
        kube_api.create_service_account(TENANT_A, "fresh", labels={IDENTITY_LABEL: "true"})
        await eventually(lambda: present(informer, TENANT_A, "fresh"), "SA read in fallback")

    # Within the TTL, repeated reads of a namespace cost one list at most.
    kube_api.reset_stats()
    await asyncio.gather(*(informer.get(TENANT_A, "fresh") for _ in range(20)))
    assert kube_api.request_count("list", "serviceaccounts") <= 1


async def test_watching_resumes_once_rbac_allows_it(
    start_informer: InformerFactory, kube_api: KubeApiServer
) -> None:
    """After RBAC is fixed the informer watches again by itself, within the retry interval."""
    kube_api.deny("watch", "serviceaccounts")
    options = InformerOptions(
        watch_timeout_seconds=5,
        fallback_ttl_seconds=0.3,
        forbidden_retry_seconds=0.3,
        backoff=OPTIONS.backoff,
    )
    informer = await start_informer(options=options)

    async def mode_is(mode: str) -> bool:
        return informer.status.mode == mode

    await eventually(lambda: mode_is("fallback"), "fallback while watch is denied")
    kube_api.allow()
    await eventually(lambda: mode_is("watching"), "watching once allowed")
    kube_api.create_service_account(TENANT_B, "after-fix", labels={IDENTITY_LABEL: "true"})
    await eventually(lambda: present(informer, TENANT_B, "after-fix"), "event after recovery")


async def test_forbidden_cluster_list_uses_namespaced_reads(
    start_informer: InformerFactory, kube_api: KubeApiServer
) -> None:
    """RBAC without a cluster-wide list still serves namespaces lakegate may list."""
    kube_api.deny("list", "serviceaccounts", namespace="")
    informer = await start_informer()
    assert informer.status.mode == "fallback"
    billing = await informer.get(TENANT_A, "billing-api")
    assert billing is not None


async def test_fallback_read_refused_fails_closed(
    start_informer: InformerFactory, kube_api: KubeApiServer
) -> None:
    """If a namespace cannot be read at all, the reader gets the 403, not 'no account'."""
    kube_api.deny("list", "serviceaccounts")
    informer = await start_informer()
    with pytest.raises(KubeForbidden, match="RBAC forbids"):
        await informer.get(TENANT_A, "billing-api")


async def test_close_ends_the_watches(
    start_informer: InformerFactory, kube_api: KubeApiServer, kube: KubeClient
) -> None:
    """Closing stops the loops and the API server sees its watches end."""
    await start_informer(selectors=[LAKEGATE, FLYTE])
    await eventually(_async(lambda: kube_api.open_watches == 2), "two watches open")
    await kube.aclose()
    await eventually(_async(lambda: kube_api.open_watches == 0), "watches closed")


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def wrapped() -> bool:
        return check()

    return wrapped
