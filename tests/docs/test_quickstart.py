"""The README's quick start, copied and pasted: `make demo` in one terminal, the block marked
``procedure: quickstart`` in another, run as written (bash, at the repository's root)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import README, ROOT, procedure

URL_LINE = re.compile(r"gateway:\s+(http://127\.0\.0\.1:\d+)")
SPEC = ROOT / "docs" / "examples" / "spec.json"


def test_the_quick_start_starts_with_make_demo_which_runs_the_demo() -> None:
    """Terminal one is `make demo`, and the Makefile's demo target is `lakegate demo`."""
    readme = README.read_text("utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "In one terminal, `make demo`" in quick
    makefile = (ROOT / "Makefile").read_text("utf-8")
    assert "\ndemo: $(STAMP)\n\t$(BIN)/lakegate demo\n" in makefile


def test_the_spec_it_submits_exists_and_is_a_runs_submit_payload() -> None:
    """docs/examples/spec.json is in the repository and has tasks."""
    spec = json.loads(SPEC.read_text("utf-8"))
    assert spec["tasks"][0]["notebook_task"]["notebook_path"]
    assert "docs/examples/spec.json" in procedure("quickstart").text


async def _demo_url(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    async with asyncio.timeout(60):
        while True:
            line = (await process.stdout.readline()).decode()
            assert line, "the demo exited before printing its URL"
            if found := URL_LINE.search(line):
                return found.group(1)


@pytest.mark.e2e
async def test_the_quick_start_commands_work_as_pasted(tmp_path: Path) -> None:
    """Every command of the second terminal succeeds against a running demo: a run submitted
    and watched to SUCCEEDED, listed, shown with its history and its output, another
    cancelled with a word on what happens next, the quota, and the curl line."""
    assert (ROOT / ".venv" / "bin" / "activate").exists(), "make install builds .venv first"
    demo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "demo", "--port", "0",
        "--data-dir", str(tmp_path / "demo"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    try:
        url = await _demo_url(demo)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEGATE_")}
        # The one difference from a newcomer's terminal: the demo's port is not 8080 here.
        env["LAKEGATE_URL"] = url
        shell = await asyncio.create_subprocess_exec(
            "bash", "-euo", "pipefail", "-c", procedure("quickstart").text,
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(120):
            out, err = await shell.communicate()
        stdout, stderr = out.decode(), err.decode()
        assert shell.returncode == 0, stdout + stderr
    finally:
        if demo.returncode is None:
            demo.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(20):
                    await demo.wait()
            except TimeoutError:
                demo.kill()
                await demo.wait()
    assert re.search(r"^state\s+SUCCEEDED$", stdout, re.MULTILINE), stdout
    assert "42 rows written" in stdout  # lakegate output: the notebook's result
    assert re.search(r"^AT\s+FROM\s+TO\s+MESSAGE$", stdout, re.MULTILINE)  # get --history
    # The second run takes 3 s and is cancelled at once: Databricks has yet to confirm it.
    assert "cancel requested for run" in stderr, stderr
    assert "namespace team-c" in stdout  # lakegate quota
    # The curl line's answer, the last line printed: the run accepted in team-a.
    assert json.loads(stdout.strip().splitlines()[-1])["namespace"] == "team-a", stdout
