"""The Kubernetes rights deploy/base grants are exactly the ones the gateway uses.

The code's side is read from the fake Kubernetes API's request log while the gateway runs end
to end: a PAT Secret and a labelled ServiceAccount each resolved and run (Secret reads, the
ServiceAccount informer's list and watch, TokenRequest), and the callers' Kubernetes calls
(TokenReview, Namespace labels) and the webhook dispatcher's signing-key read (the Secret
``lakegate-webhook``) through the gateway's own client. The RBAC side is rbac.yaml and
rbac-tenant.yaml; the Secret names read are compared with its ``resourceNames`` too. Either
side holding a right the other lacks fails: a right the code needs but RBAC lacks breaks in a
real cluster, one RBAC grants but nothing uses is access that should not be there.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.appkeys import KUBE
from gateway.emulator.kubernetes import KubeApiServer
from gateway.emulator.kubernetes.access import RequestInfo, User
from gateway.settings.webhooks import TenantWebhooks
from gateway.webhooks.keys import SigningKeys
from tests.deploy.manifests import BASE, load_docs
from tests.deploy.test_rbac_secret_names import WEBHOOK_SECRET, granted_secret_names
from tests.fixtures.identity_stack import IdentityStackFactory

Right = tuple[str, str]  # (resource as RBAC names it, verb)


def rbac_rights() -> set[Right]:
    rights = set()
    for name in ("rbac.yaml", "rbac-tenant.yaml"):
        for doc in load_docs(BASE / name):
            for rule in doc.get("rules", []):
                rights.update((r, v) for r in rule["resources"] for v in rule["verbs"])
    return rights


def used_rights(kube: KubeApiServer) -> set[Right]:
    """Resource requests the fake API answered, whatever the answer; not the Databricks
    emulator's discovery reads (non-resource paths), which are not the gateway's."""
    return {
        (resource, verb)
        for (verb, resource, _status) in kube.cluster.stats.requests
        if not resource.startswith("/")
    }


def record_secret_names(kube: KubeApiServer) -> set[str]:
    """The names of the Secrets the gateway asks for from now on, as the API's authorizer
    sees each request (before any lookup, so a missing Secret counts)."""
    names: set[str] = set()
    rbac = kube.cluster.rbac
    check = rbac.check

    def recording(info: RequestInfo, user: User) -> None:
        if info.resource == "secrets" and info.verb == "get":
            names.add(info.name)
        check(info, user)

    rbac.check = recording  # type: ignore[method-assign]
    return names


def differences(used: set[Right], granted: set[Right]) -> tuple[set[Right], set[Right]]:
    """(used but not granted, granted but not used)."""
    return used - granted, granted - used


def test_differences_see_a_right_removed_from_either_side() -> None:
    """The comparison itself: a verb dropped from either side shows up."""
    granted = {("secrets", "get"), ("tokenreviews", "create")}
    assert differences(set(granted), set(granted)) == (set(), set())
    assert differences(granted, {("secrets", "get")}) == ({("tokenreviews", "create")}, set())
    assert differences({("secrets", "get")}, granted) == (set(), {("tokenreviews", "create")})


@pytest.mark.e2e
async def test_rbac_grants_exactly_what_the_gateway_calls(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Every request the gateway made is granted, and every grant was used."""
    stack = await identity_stack_factory()
    secret_names = record_secret_names(stack.kube)
    stack.pat_secret("team-pat")
    assert await stack.run_to_end("team-pat", "rbac-pat")
    stack.labelled_service_account("team-fed", "runner")
    await stack.synced()
    assert await stack.run_to_end("team-fed", "rbac-federated")
    # What the callers' methods ask of Kubernetes, through the gateway's one client.
    assert stack.app is not None
    kube = stack.app[KUBE]
    caller = stack.kube.mint_token("team-fed", "runner", audiences=["lakegate"])
    assert (await kube.review(caller, ["lakegate"])) is not None
    await kube.namespace_labels("team-fed")
    # The dispatcher's read of a signing secret, as the base tenants file's template names it.
    stack.kube.put_secret("team-pat", WEBHOOK_SECRET, {"secret": "whsec_" + "A" * 32})
    policy = TenantWebhooks.model_validate(
        {"url": "https://receiver.example/h", "secret": {"name": WEBHOOK_SECRET}}
    )
    assert await SigningKeys(kube.read_secret, {}).keys("team-pat", policy)

    # A watch is logged when it ends: end the informer's, and wait for the log to have it.
    stack.kube.close_watches()
    async with asyncio.timeout(5):
        while True:
            if stack.kube.request_count("watch", "serviceaccounts"):
                break
            await asyncio.sleep(0.02)

    missing, unused = differences(used_rights(stack.kube), rbac_rights())
    assert not missing, f"the gateway calls what deploy/base/rbac*.yaml does not grant: {missing}"
    assert not unused, f"deploy/base/rbac*.yaml grants what the gateway never calls: {unused}"
    assert secret_names == granted_secret_names(), "Secrets read and Secrets granted differ"
