"""A namespace set up exactly as Flyte's Databricks connector documents it runs through lakegate
with no lakegate-specific object: the files of deploy/examples/flyte-namespace/ are applied as
they are to the fake Kubernetes API, and runs go REST API -> resolver -> TokenRequest / token
endpoint -> Jobs API, counted at the emulators.

The Databricks side (the principal each file names, its federation policy, the PAT's user) is
registered in the emulator from the values the files hold, as an operator would set it up in
the account; nothing is added on the Kubernetes side.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.emulator.databricks.identity_config import PrincipalsUpdate
from gateway.identity.principal import mask_client_id
from tests.e2e.specs import spec
from tests.fixtures.identity_stack import NO_RETRY, IdentityStack, IdentityStackFactory

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "flyte-namespace"
SERVICE_ACCOUNT = EXAMPLE / "serviceaccount.yaml"
TOKEN_SECRET = EXAMPLE / "secret-databricks-token.yaml"
OAUTH_SECRET = EXAMPLE / "secret-databricks-oauth.yaml"
# Flyte's own names, as flytekitplugins-spark's databricks_auth.py spells them.
FLYTE_LABEL = "flyte.org/databricks-enabled"
FLYTE_CLIENT_ID = "flyte.org/databricks-client-id"
FLYTE_AUDIENCE = "flyte.org/databricks-audience"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc]


def apply(stack: IdentityStack, path: Path) -> dict[str, Any]:
    """``kubectl apply -f path`` against the fake API: the file's one object, as written."""
    (doc,) = documents(path)
    meta = doc["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if doc["kind"] == "ServiceAccount":
        stack.kube.create_service_account(
            namespace, name, labels=meta.get("labels"), annotations=meta.get("annotations")
        )
    elif doc["kind"] == "Secret":
        assert not doc.get("data"), "the examples hold stringData only"
        stack.kube.put_secret(
            namespace,
            name,
            doc["stringData"],
            type=doc.get("type", "Opaque"),
            labels=meta.get("labels"),
        )
    else:
        raise AssertionError(f"{path}: a {doc['kind']} is not part of Flyte's namespace set-up")
    return doc


def register(stack: IdentityStack, update: dict[str, Any]) -> None:
    stack.emulator.identity.add_principals(PrincipalsUpdate.model_validate(update))


def lakegate_objects(path: Path) -> list[str]:
    """Every label or annotation key of the file that is lakegate's own."""
    keys: list[str] = []
    for doc in documents(path):
        meta = doc["metadata"]
        keys += [k for k in {**meta.get("labels", {}), **meta.get("annotations", {})}]
    return [k for k in keys if "lakegate" in k]


async def run(stack: IdentityStack, namespace: str, name: str) -> dict[str, Any]:
    """Submit one run, follow it to SUCCEEDED; the final run as the API shows it."""
    submitted = await stack.client(retry=NO_RETRY).submit_body(
        namespace, {"spec": spec(name, seconds=0.2)}
    )
    assert submitted.status == 201, submitted
    async with asyncio.timeout(15):
        final = await stack.client().wait(namespace, submitted.run["id"], poll_interval=0.05)
    assert final["state"] == "SUCCEEDED", final
    return dict(final)


def principal_of(stack: IdentityStack, name: str) -> str:
    (remote,) = [r for r in stack.emulator.runs() if r["run_name"] == name]
    return str(remote["principal"])


def submits(stack: IdentityStack) -> int:
    """Jobs runs/submit calls the emulator answered, whatever the API version."""
    return sum(
        r["count"]
        for r in stack.emulator.stats()["requests"]
        if r["method"] == "POST" and r["path"].endswith("/jobs/runs/submit")
    )


@pytest.mark.parametrize(
    "path", [SERVICE_ACCOUNT, TOKEN_SECRET, OAUTH_SECRET], ids=lambda p: p.name
)
def test_the_example_files_name_nothing_of_lakegate(path: Path) -> None:
    """The Flyte example holds Flyte's objects only: no lakegate label or annotation."""
    assert lakegate_objects(path) == []
    assert {doc["kind"] for doc in documents(path)} <= {"ServiceAccount", "Secret"}


async def test_flytes_labelled_service_account_federates_as_its_principal(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Flyte's labelled, annotated ServiceAccount: one TokenRequest for Flyte's audience, one
    exchange, both runs created by the service principal the annotation names."""
    stack = await identity_stack_factory()
    doc = apply(stack, SERVICE_ACCOUNT)
    meta = doc["metadata"]
    namespace, account = meta["namespace"], meta["name"]
    assert meta["labels"] == {FLYTE_LABEL: "true"}
    client_id, audience = meta["annotations"][FLYTE_CLIENT_ID], meta["annotations"][FLYTE_AUDIENCE]
    register(
        stack,
        {
            "service_principals": [
                {
                    "name": "flyte-runner-sp",
                    "application_id": client_id,
                    "federation_policies": [
                        {
                            "issuer": stack.kube.issuer,
                            "audiences": [audience],
                            "subject": f"system:serviceaccount:{namespace}:{account}",
                        }
                    ],
                }
            ]
        },
    )
    await stack.synced()
    first = await run(stack, namespace, "flyte-federated-1")
    await run(stack, namespace, "flyte-federated-2")
    assert [principal_of(stack, n) for n in ("flyte-federated-1", "flyte-federated-2")] == [
        "flyte-runner-sp",
        "flyte-runner-sp",
    ]
    assert stack.kube.token_requests(namespace, account) == 1
    assert stack.token_exchanges() == 1
    assert submits(stack) == 2
    assert first["identity"] == {"service_account": account}
    assert first["principal"]["service_account"] == account
    assert first["principal"]["client_id"] == mask_client_id(client_id)
    assert client_id not in str(first)


async def test_flytes_databricks_token_secret_runs_as_the_pats_user(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Flyte's databricks-token Secret (key token): no token call at all, the run is the
    PAT's user's."""
    stack = await identity_stack_factory()
    doc = apply(stack, TOKEN_SECRET)
    namespace = doc["metadata"]["namespace"]
    register(
        stack, {"users": [{"name": "flyte-user@example.com", "pats": [doc["stringData"]["token"]]}]}
    )
    final = await run(stack, namespace, "flyte-pat")
    assert principal_of(stack, "flyte-pat") == "flyte-user@example.com"
    assert stack.identity_stats()["token_requests"]["total"] == 0
    assert submits(stack) == 1
    assert final["principal"]["secret"] == "databricks-token"


async def test_flytes_databricks_oauth_secret_runs_as_its_service_principal(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Flyte's databricks-oauth Secret (client_id, client_secret): one client_credentials
    grant for all-apis (Flyte's scope), the run created by that service principal."""
    stack = await identity_stack_factory()
    doc = apply(stack, OAUTH_SECRET)
    namespace, data = doc["metadata"]["namespace"], doc["stringData"]
    register(
        stack,
        {
            "service_principals": [
                {
                    "name": "flyte-oauth-sp",
                    "application_id": data["client_id"],
                    "secrets": [data["client_secret"]],
                }
            ]
        },
    )
    final = await run(stack, namespace, "flyte-oauth")
    assert principal_of(stack, "flyte-oauth") == "flyte-oauth-sp"
    requests = stack.identity_stats()["token_requests"]
    assert requests["by_grant_type"] == {"client_credentials": 1}
    assert requests["by_scope"] == {"client_credentials": {"all-apis": 1}}
    assert submits(stack) == 1
    assert final["principal"]["client_id"] == mask_client_id(data["client_id"])


async def test_the_service_account_wins_over_flytes_secrets_and_a_blank_client_id_loses(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """All three files applied: the ServiceAccount is the identity (as in Flyte's
    oidc_federation); with its client-id annotation blanked the databricks-oauth Secret is."""
    stack = await identity_stack_factory()
    account = apply(stack, SERVICE_ACCOUNT)["metadata"]
    oauth = apply(stack, OAUTH_SECRET)
    apply(stack, TOKEN_SECRET)
    namespace = account["namespace"]
    client_id = account["annotations"][FLYTE_CLIENT_ID]
    subject = f"system:serviceaccount:{namespace}:{account['name']}"
    policy = {"issuer": stack.kube.issuer, "audiences": ["databricks"], "subject": subject}
    register(
        stack,
        {
            "service_principals": [
                {"name": "sa-sp", "application_id": client_id, "federation_policies": [policy]},
                {
                    "name": "oauth-sp",
                    "application_id": oauth["stringData"]["client_id"],
                    "secrets": [oauth["stringData"]["client_secret"]],
                },
            ]
        },
    )
    await stack.synced()
    await run(stack, namespace, "all-three")
    assert principal_of(stack, "all-three") == "sa-sp"
    stack.kube.annotate_service_account(namespace, account["name"], {FLYTE_CLIENT_ID: " "})
    await stack.synced()
    await run(stack, namespace, "blank-client-id")
    assert principal_of(stack, "blank-client-id") == "oauth-sp"
    assert stack.kube.token_requests(namespace, account["name"]) == 1


async def test_without_any_of_flytes_objects_the_namespace_is_refused_naming_them(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """An empty namespace is refused (no shared fallback, unlike Flyte's connector-wide
    token), and the refusal names Flyte's label beside lakegate's and both Secrets."""
    stack = await identity_stack_factory()
    namespace = documents(SERVICE_ACCOUNT)[0]["metadata"]["namespace"]
    problem = await stack.refused(namespace)
    text = str(problem)
    for name in (FLYTE_LABEL, "databricks-oauth", "databricks-token"):
        assert name in text, text
    assert stack.identity_stats()["token_requests"]["total"] == 0


async def test_a_flyte_service_account_without_a_client_id_is_told_of_flytes_annotation(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Blanked client id, no Secret: the refusal (422) names the ServiceAccount and Flyte's
    annotation, and nothing is minted or exchanged."""
    stack = await identity_stack_factory()
    meta = apply(stack, SERVICE_ACCOUNT)["metadata"]
    namespace, account = meta["namespace"], meta["name"]
    stack.kube.annotate_service_account(namespace, account, {FLYTE_CLIENT_ID: ""})
    await stack.synced()
    problem = await stack.refused(namespace)
    assert problem.status == 422
    detail = problem.detail or ""
    assert f"ServiceAccount '{account}'" in detail
    assert f"{FLYTE_CLIENT_ID} annotation" in detail
    assert "lakegate.io" not in detail
    assert stack.kube.token_requests(namespace, account) == 0
    assert stack.identity_stats()["token_requests"]["total"] == 0


async def test_without_the_operators_grant_in_the_namespace_lakegate_is_refused_by_rbac(
    identity_stack_factory: IdentityStackFactory,
) -> None:
    """Flyte's Secret in place but no right for lakegate to read it there (no RoleBinding):
    a 403 naming the Secret and RBAC, and no other identity is tried."""
    stack = await identity_stack_factory()
    doc = apply(stack, TOKEN_SECRET)
    namespace = doc["metadata"]["namespace"]
    stack.kube.deny("get", "secrets", namespace=namespace)
    problem = await stack.refused(namespace)
    assert problem.status == 403
    assert "Secret 'databricks-oauth'" in (problem.detail or "")
    assert "RBAC" in (problem.detail or "")
