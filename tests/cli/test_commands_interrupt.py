"""Ctrl-C while ``lakegate submit --wait`` waits: the run is left alone and the user told how."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.cli.fake_gateway import FakeGateway

# The lead wires these commands into ``lakegate``; until then a parser of our own stands in.
PROGRAM = """
import argparse, sys
from gateway.cli.commands import add_client_commands
root = argparse.ArgumentParser(prog="lakegate")
add_client_commands(root.add_subparsers(dest="command", required=True))
args = root.parse_args(sys.argv[1:])
sys.exit(args.handler(args))
"""


async def test_ctrl_c_while_waiting_exits_130_and_leaves_the_run(
    gateway: FakeGateway, spec_file: Path
) -> None:
    """SIGINT stops the wait with exit 130, cancels nothing and prints the cancel command."""
    gateway.progression = (("RUNNING", None),)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEGATE_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROGRAM,
        "submit", "-n", "team-a", "-f", str(spec_file), "--url", gateway.url,
        "--wait", "--poll-interval", "0.05",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stderr is not None
    async with asyncio.timeout(10):
        while b"RUNNING" not in (line := await process.stderr.readline()):
            assert line, "the command ended before the run was RUNNING"
        process.send_signal(signal.SIGINT)
        _, err = await process.communicate()

    assert process.returncode == 130
    text = err.decode()
    assert "run 1 is still RUNNING and keeps running" in text
    assert f"lakegate cancel --url {gateway.url} -n team-a 1" in text
    assert not any(r.path.endswith("/cancel") for r in gateway.requests)
