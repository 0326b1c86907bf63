"""`lakegate demo`, the README's main job, as a newcomer runs it."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.specs import spec
from tests.test_serving import exchange

URL_LINE = re.compile(r"gateway:\s+(http://127\.0\.0\.1:\d+)")


@pytest.mark.e2e
async def test_demo_serves_runs_to_their_end_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """The demo prints its URL, takes a run of each demo namespace to SUCCEEDED, and exits 0
    on SIGINT."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "demo",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path / "demo"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    try:
        url = None
        async with asyncio.timeout(30):
            while url is None:
                line = (await process.stdout.readline()).decode()
                assert line, "the demo exited before printing its URL"
                found = URL_LINE.search(line)
                url = found.group(1) if found else None
        # Served as `lakegate serve` serves: an obs-folded header is refused, never echoed.
        port = int(url.rsplit(":", 1)[1])
        answer = await exchange(
            port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c-canary\r\n\r\n"
        )
        assert b" 400 " in answer.split(b"\r\n")[0], answer
        assert b"canary" not in answer
        assert b"problem+json" in answer, answer
        async with aiohttp.ClientSession(url) as http:
            ids = {}
            for namespace in ("team-a", "team-b", "team-c"):
                body = {"spec": spec(f"demo-{namespace}", seconds=1.0)}
                async with http.post(f"/v1/namespaces/{namespace}/runs", json=body) as resp:
                    assert resp.status in (201, 202), await resp.text()
                    ids[namespace] = (await resp.json())["id"]
            async with asyncio.timeout(45):
                for namespace, run_id in ids.items():
                    state = ""
                    while state != "SUCCEEDED":
                        async with http.get(f"/v1/namespaces/{namespace}/runs/{run_id}") as r:
                            state = (await r.json())["state"]
                        assert state not in ("FAILED", "REJECTED", "INTERNAL_ERROR"), state
                        await asyncio.sleep(0.3)
        # team-a's run.completed reaches the demo's receiver, which verifies and prints it.
        wanted = f"run.completed: run {ids['team-a']} of team-a is SUCCEEDED (signature verified)"
        async with asyncio.timeout(20):
            while wanted not in (line := (await process.stdout.readline()).decode()):
                assert line, "the demo exited before printing the webhook"
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
