"""Every decision is one audit event, and no credential reaches a log or a response."""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp
from structlog.testing import capture_logs

from gateway.emulator.kubernetes import KubeApiServer
from tests.callers.conftest import AUDIENCE, RUNNER, CallersStack, bearer, sha256_hex, submit_body
from tests.callers.issuer import JwtIssuer

KEY = "lgk_" + secrets.token_urlsafe(32)
AUDIT_EVENTS = {"caller_authorized", "caller_refused"}


def _callers() -> dict[str, Any]:
    return {
        "methods": ["kubernetes", "api_key", "jwt"],
        "kubernetes": {"audiences": [AUDIENCE]},
        "api_keys": [{"name": "reports", "sha256": sha256_hex(KEY), "namespaces": ["team-01"]}],
        "jwt_issuers": [
            {"issuer": "{issuer}", "audiences": [AUDIENCE], "namespace_claim": "namespace"}
        ],
    }


async def test_each_decision_is_one_audit_event_without_the_credential(
    callers_stack: CallersStack,
    kube: KubeApiServer,
    issuer: JwtIssuer,
    http: aiohttp.ClientSession,
) -> None:
    """Allowed, forbidden and unauthenticated calls each log one event naming the subject,
    method, namespace, action, outcome and reason; no event and no response holds any of
    the credentials used."""
    stack = await callers_stack(_callers(), issuer=issuer)
    sa = kube.mint_token("team-00", RUNNER, audiences=[AUDIENCE])
    other_audience = kube.mint_token("team-00", RUNNER, audiences=["elsewhere"])
    good_jwt = issuer.sign(namespace="team-02")
    bad_jwt = issuer.sign(namespace="team-02", aud="elsewhere")
    wrong_key = "lgk_" + secrets.token_urlsafe(32)
    calls = [
        ("post", "team-00", bearer(sa), 201),
        ("get", "team-01", bearer(sa), 403),
        ("get", "team-00", bearer(other_audience), 401),
        ("get", "team-01", {"X-API-Key": KEY}, 200),
        ("get", "team-01", bearer(wrong_key), 401),
        ("get", "team-02", bearer(good_jwt), 200),
        ("get", "team-02", bearer(bad_jwt), 401),
        ("get", "team-02", {}, 401),
    ]
    credentials = [sa, other_audience, good_jwt, bad_jwt, KEY, wrong_key]
    seen: list[str] = []
    with capture_logs() as events:
        for method, ns, headers, expected in calls:
            url = f"{stack.url}/v1/namespaces/{ns}/runs"
            body = submit_body("audit") if method == "post" else None
            async with http.request(method, url, json=body, headers=headers) as response:
                seen.append(await response.text())
                seen.extend(f"{k}: {v}" for k, v in response.headers.items())
                assert response.status == expected, (ns, headers.keys(), await response.text())

    audit = [e for e in events if e["event"] in AUDIT_EVENTS]
    assert len(audit) == len(calls)
    outcomes = [(e["event"], e["outcome"], e.get("method"), e["namespace"]) for e in audit]
    assert outcomes == [
        ("caller_authorized", "allowed", "kubernetes", "team-00"),
        ("caller_refused", "forbidden", "kubernetes", "team-01"),
        ("caller_refused", "unauthenticated", "kubernetes", "team-00"),
        ("caller_authorized", "allowed", "api_key", "team-01"),
        ("caller_refused", "unauthenticated", "api_key", "team-01"),
        ("caller_authorized", "allowed", "jwt", "team-02"),
        ("caller_refused", "unauthenticated", "jwt", "team-02"),
        ("caller_refused", "unauthenticated", None, "team-02"),
    ]
    for event in audit:
        assert event["action"] in ("runs.submit", "runs.list")
        assert event["reason"]
    assert audit[0]["subject"] == "system:serviceaccount:team-00:runner"
    assert audit[3]["subject"] == "apikey:reports"
    assert audit[5]["subject"].startswith(f"jwt:{issuer.url}#repo:")

    everything = "\n".join([*seen, *(repr(e) for e in events)])
    for credential in credentials:
        # Neither the whole credential nor its distinctive tail (a JWT's signature).
        assert credential not in everything
        assert credential[-24:] not in everything
