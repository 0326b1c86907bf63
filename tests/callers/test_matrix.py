"""Every kind of caller against every namespace and every /v1 endpoint.

Ten namespaces; callers: each namespace's own ServiceAccount, a scheduler granted three
namespaces by name, a ServiceAccount granted the tier=batch namespaces by selector, an API key
bound by name and one by selector, a JWT mapped by claim_map and one by namespace_claim, and
three that must never get in (a token for another audience, an unknown key, no credential).
Only the allowed combinations succeed; the others get 401 or 403, and the Databricks emulator
holds no run from a refused call.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from gateway.emulator.kubernetes import KubeApiServer
from tests.callers.conftest import AUDIENCE, RUNNER, CallersStack, bearer, sha256_hex, submit_body
from tests.callers.issuer import JwtIssuer
from tests.fixtures.gateway import namespace_name

NAMESPACES = [namespace_name(i) for i in range(10)]
BATCH = {ns for i, ns in enumerate(NAMESPACES) if i % 2 == 0}
REPORTS_KEY = "lgk_" + secrets.token_urlsafe(32)
BATCH_KEY = "lgk_" + secrets.token_urlsafe(32)
SUCCESS = {"submit": {201, 202}, "list": {200}, "get": {200}, "cancel": {202}}


@dataclass(frozen=True)
class Who:
    name: str
    headers: dict[str, str]
    allowed: frozenset[str]
    # 401 for callers that are not authenticated at all, 403 for known ones.
    refused: int = 403


def callers_section() -> dict[str, object]:
    """The ``callers`` section both matrices (this one and the facade's) run under."""
    return {
        "methods": ["kubernetes", "api_key", "jwt"],
        "kubernetes": {"audiences": [AUDIENCE]},
        "api_keys": [
            {
                "name": "reports",
                "sha256": sha256_hex(REPORTS_KEY),
                "namespaces": ["team-04", "team-05"],
            },
            {"name": "batch", "sha256": sha256_hex(BATCH_KEY), "namespace_selector": "tier=batch"},
        ],
        "jwt_issuers": [
            {
                "issuer": "{issuer}",
                "audiences": [AUDIENCE],
                "namespace_claim": "namespace",
                "claim_map": [{"claim": "repository", "values": {"org/repo-a": ["team-06"]}}],
            }
        ],
        "grants": [
            {
                "subject": "system:serviceaccount:airflow:scheduler",
                "namespaces": ["team-01", "team-02", "team-03"],
            },
            {"subject": "system:serviceaccount:team-09:*", "namespace_selector": "tier=batch"},
        ],
    }


def matrix_callers(kube: KubeApiServer, issuer: JwtIssuer) -> list[Who]:
    """The 18 callers: the ten namespaces' ServiceAccounts first, in namespace order."""

    def sa(ns: str, name: str = RUNNER) -> dict[str, str]:
        return bearer(kube.mint_token(ns, name, audiences=[AUDIENCE]))

    people = [Who(f"sa-{ns}", sa(ns), frozenset({ns})) for ns in NAMESPACES]
    people[9] = Who("sa-team-09", people[9].headers, frozenset({"team-09", *BATCH}))
    return [
        *people,
        Who("scheduler", sa("airflow", "scheduler"), frozenset({"team-01", "team-02", "team-03"})),
        Who("key-reports", {"X-API-Key": REPORTS_KEY}, frozenset({"team-04", "team-05"})),
        Who("key-batch", bearer(BATCH_KEY), frozenset(BATCH)),
        Who("jwt-repo", bearer(issuer.sign(repository="org/repo-a")), frozenset({"team-06"})),
        Who("jwt-ns", bearer(issuer.sign(namespace="team-07")), frozenset({"team-07"})),
        Who(
            "sa-other-audience",
            bearer(kube.mint_token("team-00", RUNNER, audiences=["elsewhere"])),
            frozenset(),
            401,
        ),
        Who("key-unknown", bearer("lgk_" + secrets.token_urlsafe(32)), frozenset(), 401),
        Who("nobody", {}, frozenset(), 401),
    ]


async def test_only_allowed_combinations_succeed_and_refused_ones_never_reach_databricks(
    callers_stack: CallersStack,
    kube: KubeApiServer,
    issuer: JwtIssuer,
    http: aiohttp.ClientSession,
) -> None:
    """18 callers x 10 namespaces x 4 endpoints: success exactly where allowed."""
    stack = await callers_stack(callers_section(), namespaces=10, issuer=issuer)
    callers = matrix_callers(kube, issuer)
    base = stack.url + "/v1/namespaces/{ns}/runs"

    # One run per namespace, by its own ServiceAccount, for get and cancel to aim at.
    seeds: dict[str, int] = {}
    for who in callers[:10]:
        ns = (
            next(iter(who.allowed - BATCH)) if who.name == "sa-team-09" else next(iter(who.allowed))
        )
        async with http.post(
            base.format(ns=ns), json=submit_body(f"seed.{ns}"), headers=who.headers
        ) as r:
            assert r.status in SUCCESS["submit"], await r.text()
            seeds[ns] = int((await r.json())["id"])

    calls: dict[str, Callable[[str], tuple[str, str, object]]] = {
        "submit": lambda ns: ("POST", base.format(ns=ns), None),
        "list": lambda ns: ("GET", base.format(ns=ns), None),
        "get": lambda ns: ("GET", f"{base.format(ns=ns)}/{seeds[ns]}", None),
        "cancel": lambda ns: ("POST", f"{base.format(ns=ns)}/{seeds[ns]}/cancel", None),
    }
    limit = asyncio.Semaphore(16)

    async def one(who: Who, ns: str, endpoint: str) -> tuple[str, str, str, int]:
        method, url, _ = calls[endpoint](ns)
        body = submit_body(f"m.{who.name}.{ns}") if endpoint == "submit" else None
        async with limit, http.request(method, url, json=body, headers=who.headers) as r:
            await r.read()
            return who.name, ns, endpoint, r.status

    plan = [(who, ns, endpoint) for who in callers for ns in NAMESPACES for endpoint in calls]
    results = await asyncio.gather(*(one(*p) for p in plan))

    by_name = {who.name: who for who in callers}
    wrong = []
    for name, ns, endpoint, status in results:
        who = by_name[name]
        expected = SUCCESS[endpoint] if ns in who.allowed else {who.refused}
        if status not in expected:
            wrong.append((name, ns, endpoint, status, sorted(expected)))
    assert not wrong, wrong

    # Databricks saw the seeds and the allowed submissions, and nothing else.
    allowed_submits = {
        f"m.{who.name}.{ns}" for who in callers for ns in NAMESPACES if ns in who.allowed
    }
    expected_names = {f"seed.{ns}" for ns in NAMESPACES} | allowed_submits
    remote = {run["run_name"] for run in stack.emulator.runs()}
    assert remote == expected_names
    assert len(allowed_submits) == 10 + 3 + 5 + 2 + 5 + 1 + 1
