"""scripts/ensure-tools: quick when the tools are there, and never in a newcomer's way.

Each case runs the script under a PATH holding only what the case needs (a fake ``id``
saying who we are, a ``promtool`` or none), so nothing is installed by these tests.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ensure-tools"


def _bin(tmp_path: Path, **programs: str) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, body in programs.items():
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        path.chmod(0o755)
    return folder


def _run(folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(SCRIPT)],
        env={"PATH": str(folder), "HOME": os.environ.get("HOME", "/"), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_nothing_happens_when_promtool_is_there(tmp_path: Path) -> None:
    """Present tools: exit 0 at once, nothing printed, not even `id` asked."""
    folder = _bin(tmp_path, promtool="exit 0", id="echo asked >&2; exit 9")
    started = time.monotonic()
    done = _run(folder, LAKEGATE_TOOLS="required")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert time.monotonic() - started < 5


def test_a_newcomer_without_root_is_told_and_not_stopped(tmp_path: Path) -> None:
    """No root, no sudo: a note naming the package, exit 0, so `make test` goes on."""
    folder = _bin(tmp_path, id="echo 1000")
    done = _run(folder)
    assert done.returncode == 0
    assert "not root" in done.stderr
    assert "prometheus" in done.stderr
    assert "will skip" in done.stderr


@pytest.mark.parametrize("uid", ["1000", "0"])
def test_ci_fails_when_the_tool_cannot_be_installed(tmp_path: Path, uid: str) -> None:
    """LAKEGATE_TOOLS=required: no root, or root without apt-get, is exit 1 with the cause."""
    folder = _bin(tmp_path, id=f"echo {uid}")
    done = _run(folder, LAKEGATE_TOOLS="required")
    assert done.returncode == 1
    assert ("not root" if uid != "0" else "no apt-get") in done.stderr
    assert "LAKEGATE_TOOLS=required" in done.stderr


def test_root_installs_with_apt_get(tmp_path: Path) -> None:
    """As root it asks apt-get for the prometheus package, and checks promtool came."""
    log = tmp_path / "apt.log"
    # The fake apt-get "installs" promtool next to itself, as the package would.
    folder = _bin(
        tmp_path,
        id="echo 0",
        **{
            "apt-get": (
                f'echo "$*" >> {log}\n'
                f'printf "#!/bin/sh\\nexit 0\\n" > {tmp_path}/bin/promtool\n'
                f"/bin/chmod +x {tmp_path}/bin/promtool"
            )
        },
    )
    done = _run(folder, LAKEGATE_TOOLS="required")
    assert done.returncode == 0, done.stderr
    (call,) = log.read_text("utf-8").splitlines()
    assert call.startswith("install ")
    assert call.endswith(" prometheus")
    assert "--no-install-recommends" in call


def test_the_makefile_runs_it_before_the_tests() -> None:
    """`make test` (the README's and CI's command) depends on the tools target."""
    makefile = (ROOT / "Makefile").read_text("utf-8")
    assert "\ntest: lint tools\n" in makefile
    assert "scripts/ensure-tools" in makefile
    assert "export LAKEGATE_TOOLS=required" in (ROOT / ".ci" / "run").read_text("utf-8")
