"""The doctor's routes over real sockets: authorized like the namespace's other endpoints, the
list filtered to the caller's namespaces, answers matching the OpenAPI document, no secret."""

from __future__ import annotations

import json
import secrets
from typing import Any

import aiohttp

from gateway import secrets_registry
from gateway.app import Overrides
from tests.api.schema import assert_matches, assert_problem
from tests.callers.conftest import bearer, sha256_hex
from tests.fixtures.gateway import StackFactory

KEY = "lgk_" + secrets.token_urlsafe(32)
API_KEY_CALLERS = {
    "methods": ["api_key"],
    "api_keys": [{"name": "team-01-ci", "sha256": sha256_hex(KEY), "namespaces": ["team-01"]}],
}


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers=headers or {}) as response,
    ):
        return response.status, await response.json(content_type=None)


def _inline_secrets(settings: Any) -> list[str]:
    found = []
    for policy in settings.tenants.namespaces.values():
        for name in ("token", "client_secret"):
            value = getattr(policy.identity, name, None)
            if value is not None:
                found.append(value.get_secret_value())
    return found


async def test_check_is_authorized_like_the_namespace(gateway_stack_factory: StackFactory) -> None:
    """A key bound to team-01 checks team-01 (200), is refused team-00 (403), and no
    credential is refused (401)."""
    stack = await gateway_stack_factory(gateway={"callers": API_KEY_CALLERS})
    url = f"{stack.url}/v1/namespaces/%s/identity"
    status, report = await _get(url % "team-01", bearer(KEY))
    assert status == 200
    assert report["healthy"] is True
    assert_matches("DoctorReport", report)
    assert (await _get(url % "team-00", bearer(KEY)))[0] == 403
    assert (await _get(url % "team-01"))[0] == 401


async def test_report_holds_no_secret(gateway_stack_factory: StackFactory) -> None:
    """Inline PATs and OAuth secrets of the tenants file, and the tokens fetched with them,
    appear nowhere in the reports."""
    stack = await gateway_stack_factory()
    for namespace in ("team-00", "team-01"):
        _, report = await _get(f"{stack.url}/v1/namespaces/{namespace}/identity")
        text = json.dumps(report)
        assert report["healthy"] is True, text
        assert secrets_registry.scrub(text) == text
        for value in _inline_secrets(stack.settings):
            assert value not in text


async def test_list_shows_only_the_callers_namespaces(gateway_stack_factory: StackFactory) -> None:
    """The list answers the namespaces the caller may act for, with kind and state."""
    stack = await gateway_stack_factory(gateway={"callers": API_KEY_CALLERS})
    status, body = await _get(f"{stack.url}/v1/namespaces", bearer(KEY))
    assert status == 200
    assert [t["namespace"] for t in body["namespaces"]] == ["team-01"]
    assert body["namespaces"][0]["kind"] == "oauth-m2m"
    assert body["namespaces"][0]["state"] == "ok"
    assert (await _get(f"{stack.url}/v1/namespaces"))[0] == 401


async def test_list_mints_and_fetches_no_token(gateway_stack_factory: StackFactory) -> None:
    """Every configured namespace is listed, with no request to any token endpoint."""
    stack = await gateway_stack_factory()
    status, body = await _get(f"{stack.url}/v1/namespaces")
    assert status == 200
    for tenant in body["namespaces"]:
        assert_matches("Tenant", tenant)
    kinds = {t["namespace"]: t["kind"] for t in body["namespaces"]}
    pat, oauth = "pat", "oauth-m2m"
    assert kinds == {"team-00": pat, "team-01": oauth, "team-02": pat, "team-03": oauth}
    assert stack.emulator.stats()["identity"]["token_requests"]["total"] == 0


class _OpaqueResolver:
    """A resolver that resolves but cannot explain itself (as tests and embedders may inject)."""

    async def resolve(self, namespace: str, override: object = None) -> object:
        raise AssertionError("not called by the doctor")


async def test_without_an_explaining_resolver_the_doctor_says_so(
    gateway_stack_factory: StackFactory,
) -> None:
    """An injected resolver that cannot explain: both routes answer a 404 problem, never a 5xx."""
    overrides = Overrides(environ={}, identities=lambda session: _OpaqueResolver())
    stack = await gateway_stack_factory(overrides=overrides)
    for path in ("/v1/namespaces", "/v1/namespaces/team-00/identity"):
        status, body = await _get(stack.url + path)
        assert status == 404
        assert_problem(body, 404)
        assert "without the tenant doctor" in body["detail"]
