"""A tenant refused for its policy heals without a restart where it can, and /readyz,
``lakegate_tenants_refused``, the tenant doctor and the log follow.

- A token file that appears heals the tenant by itself: no reload, no restart (end to end
  through the API, the run going to Databricks as the principal the file's token federates).
- An unset environment variable cannot heal in a running process; a tenants file that names
  the credential another way heals on its reload, which is what SIGHUP runs, and the metric
  follows at once, without a probe.
- The watch re-evaluates every interval while a tenant is refused, and not at all otherwise.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from gateway.app import Overrides, create_app
from gateway.appkeys import METRICS, TENANTS_RELOADER
from gateway.metrics import Metrics
from gateway.settings import Settings, load_settings
from gateway.settings.tenants import TenantRefusal
from gateway.tenant_refusals import RECHECK_SECONDS, RefusalWatch
from tests.fixtures.identity_stack import (
    POD_CLIENT_ID,
    POD_SP,
    IdentityStack,
    IdentityStackFactory,
)
from tests.support.waiting import until

GATEWAY = """
workspaces:
  prod: {host: "https://adb-1234567890123456.7.azuredatabricks.net"}
kubernetes: {mode: "off"}
callers: {methods: [none]}
store: {sqlite_path: ledger.db}
tenants_file: tenants.yaml
"""
UNSET = """
defaults: {workspace: prod}
namespaces:
  team-a:
    identity: {type: pat, token_env: TEAM_A_TOKEN}
"""
SET_ONE = UNSET.replace("TEAM_A_TOKEN", "TEAM_A_ROTATED_TOKEN")
ENVIRON = {"TEAM_A_ROTATED_TOKEN": "dapi" + "0" * 32}


def _refused_line(metrics: Metrics, namespace: str, reason: str) -> str:
    return f'lakegate_tenants_refused{{namespace="{namespace}",reason="{reason}"}} 1.0'


async def _policy_step(stack: IdentityStack, namespace: str) -> str:
    """The tenant doctor's policy step (`lakegate tenants check`), as the API answers it."""
    assert stack.session is not None
    async with stack.session.get(f"{stack.url}/v1/namespaces/{namespace}/identity") as resp:
        report = await resp.json()
    (step,) = [s for s in report["steps"] if s["name"] == "policy"]
    return str(step["outcome"])


async def _tenant_detail(client: TestClient) -> str:
    resp = await client.get("/readyz")
    assert resp.status == 200
    return str((await resp.json())["checks"]["tenant_policies"]["detail"])


@pytest.mark.e2e
async def test_a_token_file_that_appears_heals_the_tenant_without_a_restart(
    identity_stack_factory: IdentityStackFactory, tmp_path: Path
) -> None:
    late = tmp_path / "late" / "token"
    policy = {"identity": {"type": "pod-token-federation", "client_id": POD_CLIENT_ID,
                           "token_file": str(late)}}  # fmt: skip
    stack = await identity_stack_factory(tenants={"team-late": policy})
    assert stack.app is not None
    metrics = stack.app[METRICS]
    problem = await stack.refused("team-late")
    assert problem.status == 422
    assert str(late) in problem.detail
    assert "no restart needed" in problem.detail
    assert _refused_line(metrics, "team-late", "file") in metrics.render().decode()
    assert await _policy_step(stack, "team-late") == "failed"

    await asyncio.to_thread(late.parent.mkdir)
    await asyncio.to_thread(shutil.copy, stack.pod_token_file, late)
    assert await stack.run_to_end("team-late", "healed") == POD_SP
    assert stack.session is not None
    async with stack.session.get(f"{stack.url}/readyz") as ready:
        body = await ready.json()
    assert body["checks"]["tenant_policies"]["detail"] == "every configured tenant policy is usable"
    assert "lakegate_tenants_refused{" not in metrics.render().decode()
    assert await _policy_step(stack, "team-late") == "ok"


async def test_an_unset_variable_heals_on_a_reload_naming_the_credential_another_way(
    tmp_path: Path,
) -> None:
    (tmp_path / "gateway.yaml").write_text(GATEWAY.replace("ledger.db", str(tmp_path / "l.db")))
    (tmp_path / "tenants.yaml").write_text(UNSET)

    def source() -> Settings:
        return load_settings(tmp_path / "gateway.yaml", environ=ENVIRON)

    settings = await asyncio.to_thread(source)
    over = Overrides(
        environ=ENVIRON, run_poller=False, run_dispatcher=False, settings_source=source
    )
    # Built off the loop, as `lakegate serve` builds it before the loop runs (it stats files).
    app = await asyncio.to_thread(create_app, settings, over)
    async with TestClient(TestServer(app)) as client:
        metrics = app[METRICS]
        detail = await _tenant_detail(client)
        assert "TEAM_A_TOKEN" in detail
        assert "restart: a running gateway never sees its environment change" in detail
        assert _refused_line(metrics, "team-a", "environment") in metrics.render().decode()

        await asyncio.to_thread((tmp_path / "tenants.yaml").write_text, SET_ONE)
        with capture_logs() as logs:
            assert await app[TENANTS_RELOADER].reload()  # what SIGHUP runs
            # No probe: the reload itself has the refusals evaluated again.
            await until(lambda: "lakegate_tenants_refused{" not in metrics.render().decode())
        assert {"event": "tenant_refusal_cleared", "namespace": "team-a"}.items() <= next(
            e for e in logs if e["event"] == "tenant_refusal_cleared"
        ).items()
        assert await _tenant_detail(client) == "every configured tenant policy is usable"


class Refusals:
    """The resolver's answer, scripted: what is refused now, and how often it was asked."""

    def __init__(self) -> None:
        self.now: list[TenantRefusal] = []
        self.asked = 0

    async def refusals(self) -> list[TenantRefusal]:
        self.asked += 1
        return list(self.now)


async def test_the_watch_rechecks_only_while_a_tenant_is_refused() -> None:
    assert RECHECK_SECONDS == 30, "the README and the operator guide say every 30 s"
    source, metrics = Refusals(), Metrics()
    watch = RefusalWatch(source, metrics, interval_seconds=0.05)
    source.now = [TenantRefusal("team-f", "file", "tenants...token_file: /t cannot be read")]
    with capture_logs() as logs:
        await watch.refresh()
        async with watch.running():
            await until(lambda: source.asked >= 3)  # periodic while refused
            assert _refused_line(metrics, "team-f", "file") in metrics.render().decode()
            source.now = []  # the file appeared
            await until(lambda: "lakegate_tenants_refused{" not in metrics.render().decode())
            asked = source.asked
            await asyncio.sleep(0.25)
            assert source.asked == asked, "nothing refused: no periodic work"
            watch.wake()  # a reload
            await until(lambda: source.asked == asked + 1)
    events = [(e["event"], e["namespace"]) for e in logs]
    assert events == [("tenant_refused", "team-f"), ("tenant_refusal_cleared", "team-f")]


async def test_the_first_look_leaves_unset_variables_to_the_resolvers_start_up_log() -> None:
    """The resolver logged them when it was built; files are logged here, once."""
    source = Refusals()
    source.now = [
        TenantRefusal("team-e", "environment", "k: environment variable X is not set"),
        TenantRefusal("team-f", "file", "k: /t cannot be read"),
    ]
    watch = RefusalWatch(source, Metrics())
    with capture_logs() as logs:
        await watch.refresh()
        await watch.refresh()
    assert [(e["event"], e["namespace"]) for e in logs] == [("tenant_refused", "team-f")]
    assert [r.namespace for r in watch.refused] == ["team-e", "team-f"]
