"""``lakegate quota -n NS`` against a real gateway: limits, usage and the queue."""

from __future__ import annotations

import json
from typing import Any

from tests.cli.conftest import RunCli
from tests.fixtures.gateway import StackFactory, namespace_name

SPEC: dict[str, Any] = {
    "run_name": "quota",
    "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/Repos/etl/main"}}],
}


async def test_quota_shows_limits_usage_and_the_queue(
    cli: RunCli, gateway_stack_factory: StackFactory
) -> None:
    """The text view shows active against its limit and each queued run's position."""
    stack = await gateway_stack_factory(
        namespaces=1,
        quotas={"max_active_runs": 1, "max_queued_runs": 5},
        emulator={"lifecycle": {"running_seconds": 30.0}},
    )
    ns = namespace_name(0)
    for _ in range(2):
        async with stack.session.post(
            f"{stack.url}/v1/namespaces/{ns}/runs", json={"spec": SPEC}
        ) as resp:
            assert resp.status in (201, 202)
    text = await cli("quota", "-n", ns, url=stack.url)
    assert text.code == 0
    assert "active     1 / 1" in text.out
    assert "queued     1 / 5" in text.out
    assert "#1  run 2" in text.out
    shown = await cli("quota", "-n", ns, "-o", "json", url=stack.url)
    # The gateway runs in this process and logs to the same stdout: take the printed document.
    lines = shown.out.splitlines()
    document = "\n".join(lines[lines.index("{") : lines.index("}") + 1])
    assert json.loads(document)["usage"]["queued"] == 1
