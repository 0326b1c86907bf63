"""ServiceAccount tokens checked with TokenReview against the fake Kubernetes API."""

from __future__ import annotations

import asyncio

import aiohttp
import jwt

from gateway.emulator.kubernetes import KubeApiServer
from tests.callers.conftest import AUDIENCE, RUNNER, CallersStack, bearer, submit_body
from tests.support.jwt_issuer import rsa_key

KUBE_ONLY = {"methods": ["kubernetes"], "kubernetes": {"audiences": [AUDIENCE]}}


def _reviews(kube: KubeApiServer) -> int:
    return sum(kube.cluster.stats.token_reviews.values())


async def _submit(
    http: aiohttp.ClientSession, url: str, namespace: str, token: str
) -> aiohttp.ClientResponse:
    async with http.post(
        f"{url}/v1/namespaces/{namespace}/runs", json=submit_body("k"), headers=bearer(token)
    ) as response:
        await response.read()
        return response


async def test_a_service_account_acts_for_its_own_namespace(
    callers_stack: CallersStack, kube: KubeApiServer, http: aiohttp.ClientSession
) -> None:
    """A token of team-00's ServiceAccount, for the gateway's audience, submits in team-00."""
    stack = await callers_stack(KUBE_ONLY)
    token = kube.mint_token("team-00", RUNNER, audiences=[AUDIENCE])
    response = await _submit(http, stack.url, "team-00", token)
    assert response.status == 201


async def test_a_service_account_is_refused_another_namespace(
    callers_stack: CallersStack, kube: KubeApiServer, http: aiohttp.ClientSession
) -> None:
    """team-00's ServiceAccount gets 403 in team-01, and nothing reaches Databricks."""
    stack = await callers_stack(KUBE_ONLY)
    token = kube.mint_token("team-00", RUNNER, audiences=[AUDIENCE])
    response = await _submit(http, stack.url, "team-01", token)
    assert response.status == 403
    assert stack.emulator.runs() == []


async def test_a_grant_opens_more_namespaces(
    callers_stack: CallersStack, kube: KubeApiServer, http: aiohttp.ClientSession
) -> None:
    """A grant by subject glob and one by namespace label selector both open namespaces."""
    stack = await callers_stack(
        {
            **KUBE_ONLY,
            "grants": [
                {"subject": "system:serviceaccount:airflow:*", "namespaces": ["team-01"]},
                {
                    "subject": "system:serviceaccount:airflow:scheduler",
                    "namespace_selector": "tier=batch",
                },
            ],
        }
    )
    token = kube.mint_token("airflow", "scheduler", audiences=[AUDIENCE])
    statuses = {
        ns: (await _submit(http, stack.url, ns, token)).status
        for ns in ("team-00", "team-01", "team-02", "team-03")
    }
    # team-00 and team-02 are labelled tier=batch; team-01 is granted by name.
    assert statuses == {"team-00": 201, "team-01": 201, "team-02": 201, "team-03": 403}


async def test_a_token_for_another_audience_is_refused(
    callers_stack: CallersStack, kube: KubeApiServer, http: aiohttp.ClientSession
) -> None:
    """A token minted for another audience (Databricks federation, say) gets 401."""
    stack = await callers_stack(KUBE_ONLY)
    token = kube.mint_token("team-00", RUNNER, audiences=["lakegate-databricks"])
    assert (await _submit(http, stack.url, "team-00", token)).status == 401


async def test_an_expired_token_is_refused(
    callers_stack: CallersStack, kube: KubeApiServer, http: aiohttp.ClientSession
) -> None:
    """Past its exp and the API server's 60 s leeway, a token gets 401."""
    stack = await callers_stack(KUBE_ONLY)
    token = kube.mint_token("team-00", RUNNER, audiences=[AUDIENCE], seconds=600)
    kube.advance(600 + 61)
    assert (await _submit(http, stack.url, "team-00", token)).status == 401


async def test_a_token_signed_by_another_key_is_refused(
    callers_stack: CallersStack, kube: KubeApiServer, http: aiohttp.ClientSession
) -> None:
    """The claims of a valid token, signed again by a key the cluster never had: 401."""
    stack = await callers_stack(KUBE_ONLY)
    genuine = kube.mint_token("team-00", RUNNER, audiences=[AUDIENCE])
    claims = jwt.decode(genuine, options={"verify_signature": False})
    forged = jwt.encode(claims, rsa_key(), algorithm="RS256", headers={"kid": kube.kid})
    assert (await _submit(http, stack.url, "team-00", forged)).status == 401


async def test_a_deleted_service_account_is_refused_once_its_cache_entry_ends(
    callers_stack: CallersStack, kube: KubeApiServer, http: aiohttp.ClientSession
) -> None:
    """Deleting the ServiceAccount revokes its tokens: refused within cache_seconds."""
    stack = await callers_stack(
        {"methods": ["kubernetes"], "kubernetes": {"audiences": [AUDIENCE], "cache_seconds": 0.5}}
    )
    token = kube.mint_token("team-00", RUNNER, audiences=[AUDIENCE])
    assert (await _submit(http, stack.url, "team-00", token)).status == 201
    kube.delete_service_account("team-00", RUNNER)
    # Still cached: no TokenReview is made for a token seen moments ago.
    reviews = _reviews(kube)
    assert (await _submit(http, stack.url, "team-00", token)).status == 201
    assert _reviews(kube) == reviews
    await asyncio.sleep(0.6)
    assert (await _submit(http, stack.url, "team-00", token)).status == 401


async def test_a_burst_of_one_new_token_costs_one_token_review(
    callers_stack: CallersStack, kube: KubeApiServer, http: aiohttp.ClientSession
) -> None:
    """Twenty concurrent requests carrying one fresh token share a single TokenReview."""
    stack = await callers_stack(KUBE_ONLY)
    token = kube.mint_token("team-00", RUNNER, audiences=[AUDIENCE])
    before = _reviews(kube)

    async def list_runs() -> int:
        url = f"{stack.url}/v1/namespaces/team-00/runs"
        async with http.get(url, headers=bearer(token)) as response:
            return response.status

    statuses = await asyncio.gather(*(list_runs() for _ in range(20)))
    assert statuses == [200] * 20
    assert _reviews(kube) == before + 1
