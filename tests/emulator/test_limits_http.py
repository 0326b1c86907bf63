"""The workspace's limits over real HTTP: active runs and request rates answer 429."""

from __future__ import annotations

import uuid

from tests.emulator._http import notebook, open_api
from tests.fixtures.databricks_emulator import EmulatorFactory, emulator_config


async def test_the_active_run_limit_answers_the_real_429(
    databricks_emulator_factory: EmulatorFactory,
) -> None:
    """Beyond max_active_runs: 429 REQUEST_LIMIT_EXCEEDED, the real message, Retry-After."""
    emulator = await databricks_emulator_factory(emulator_config(limits={"max_active_runs": 2}))
    async with open_api(emulator) as api:
        await api.submit()
        await api.submit()
        emulator.advance(30)
        reply = await api.call("POST", "runs/submit", json={"tasks": [notebook()]})
    assert reply.status == 429
    assert reply.body["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert reply.body["message"] == "There are already 2 active runs (limit: 2)."
    [detail] = reply.body["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.RequestInfo"
    uuid.UUID(detail["request_id"])
    # The first run ends 75 s after submission; 30 s have passed.
    assert reply.headers["Retry-After"] == "45"
    assert len(emulator.runs()) == 2


async def test_a_rate_limited_endpoint_answers_429_with_retry_after(
    databricks_emulator_factory: EmulatorFactory,
) -> None:
    """Past its token bucket an endpoint answers 429 with an integer Retry-After."""
    limits = {"rate_limits": {"runs/list": {"requests_per_second": 0.5, "burst": 2}}}
    emulator = await databricks_emulator_factory(emulator_config(limits=limits))
    async with open_api(emulator) as api:
        statuses = [(await api.call("GET", "runs/list")).status for _ in range(2)]
        refused = await api.call("GET", "runs/list")
        other = await api.call("GET", "runs/get", params={"run_id": "1"})
        emulator.advance(2)
        again = await api.call("GET", "runs/list")
    assert statuses == [200, 200]
    assert (refused.status, refused.headers["Retry-After"]) == (429, "2")
    assert refused.body["message"] == "ListRunsRequest RPC token bucket limit has been exceeded."
    assert other.status == 400
    assert again.status == 200


async def test_the_rate_limit_applies_to_both_api_versions(
    databricks_emulator_factory: EmulatorFactory,
) -> None:
    """One bucket per endpoint, whichever API version the call uses."""
    limits = {"rate_limits": {"runs/submit": {"requests_per_second": 0.1, "burst": 1}}}
    emulator = await databricks_emulator_factory(emulator_config(limits=limits))
    async with open_api(emulator) as api:
        await api.submit()
        api.version = "2.1"
        reply = await api.call("POST", "runs/submit", json={"tasks": [notebook()]})
    assert reply.status == 429
    assert len(emulator.runs()) == 1
