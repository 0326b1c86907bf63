"""Run a client's driver script in the client's own environment and read what it found.

A driver (``drivers/<name>.py``) reads one JSON object of arguments on stdin, calls the client's
real API step by step, and prints one JSON object on its last stdout line:
``{"steps": [{"step": "...", "ok": true, "value": ...} | {"step": "...", "ok": false,
"error": "..."}]}``. A step that depends on a failed one is not tried. The child gets a clean
environment (its own HOME, no ~/.databrickscfg or DATABRICKS_* of the developer's) plus the CA
file for HTTPS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.clients.envs import ClientEnv

DRIVERS = Path(__file__).resolve().parent / "drivers"
DRIVER_TIMEOUT_SECONDS = 150.0


@dataclass(frozen=True)
class Outcome:
    steps: list[dict[str, Any]]
    stderr: str

    def value(self, step: str) -> Any:
        for entry in self.steps:
            if entry["step"] == step:
                return entry.get("value")
        raise KeyError(step)

    def failures(self) -> list[str]:
        return [f"{s['step']}: {s.get('error')}" for s in self.steps if not s["ok"]]

    def check(self, expected: list[str]) -> None:
        """Every expected step ran and succeeded; the message names each one that did not."""
        done = [s["step"] for s in self.steps]
        missing = [step for step in expected if step not in done]
        problems = self.failures() + [f"{step}: not reached" for step in missing]
        assert not problems, "\n".join(problems) + "\n--- stderr tail ---\n" + self.stderr[-3000:]


def _environment(home: Path, extra: dict[str, str]) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update({"HOME": str(home), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"})
    env.update(extra)
    return env


async def run_driver(
    env: ClientEnv,
    driver: str,
    args: dict[str, Any],
    *,
    home: Path,
    extra_env: dict[str, str],
    within: float = DRIVER_TIMEOUT_SECONDS,
) -> Outcome:
    process = await asyncio.create_subprocess_exec(
        str(env.python),
        str(DRIVERS / f"{driver}.py"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_environment(home, extra_env),
        cwd=str(home),
    )
    try:
        out, err = await asyncio.wait_for(
            process.communicate(json.dumps(args).encode()), timeout=within
        )
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise AssertionError(f"driver {driver} did not finish within {within:g} s") from None
    stderr = err.decode(errors="replace")
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise AssertionError(
            f"driver {driver} exited {process.returncode} without a result:\n{stderr[-3000:]}"
        ) from None
    return Outcome(steps=list(result["steps"]), stderr=stderr)
