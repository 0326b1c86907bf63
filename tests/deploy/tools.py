"""Command-line tools some tests run, which ``scripts/ensure-tools`` installs (``make test``).

A test that needs one skips, naming the package to install, when it is absent; with
``LAKEGATE_TOOLS=required`` (``.ci/run``) it fails instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRED = "LAKEGATE_TOOLS"


def tool(name: str, *, package: str) -> str:
    """The path of ``name``; skips (or fails, when required) if it is not installed."""
    found = shutil.which(name)
    if found is not None:
        return found
    reason = (
        f"{name} is not installed (Debian package {package}; `sh scripts/ensure-tools` "
        f"installs it as root)"
    )
    if os.environ.get(REQUIRED) == "required":
        pytest.fail(f"{reason}, and {REQUIRED}=required")
    pytest.skip(reason)
