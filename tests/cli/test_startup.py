"""``lakegate serve`` start-up failures, each in a real process: one line on stderr naming the
cause and the fix, exit code 2, no traceback (unless --debug)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

Serve = Callable[..., subprocess.CompletedProcess[str]]

WORKSPACE = {"prod": {"host": "https://adb-1.2.azuredatabricks.net"}}


def _clean_environment() -> dict[str, str]:
    # Nothing of the machine's own: no LAKEGATE_ overrides, and not inside a pod.
    drop = ("LAKEGATE_", "KUBERNETES_", "DATABRICKS_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


@pytest.fixture
def serve(tmp_path: Path) -> Serve:
    """Write a gateway.yaml (the keys given over a runnable base) and run ``lakegate serve``
    on it; the process must end by itself."""

    def run(
        *args: str, text: str | None = None, **sections: object
    ) -> subprocess.CompletedProcess[str]:
        config = tmp_path / "gateway.yaml"
        if text is None:
            base: dict[str, object] = {
                "server": {"host": "127.0.0.1", "port": 0},
                # Warnings would be lines of their own; the point is the one error line.
                "logging": {"level": "error", "format": "json"},
                "store": {"sqlite_path": str(tmp_path / "lakegate.db")},
                "workspaces": WORKSPACE,
                "kubernetes": {"mode": "off"},
                "callers": {"methods": ["none"]},
            }
            text = yaml.safe_dump({**base, **sections})
        config.write_text(text, encoding="utf-8")
        return subprocess.run(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config), *args],
            capture_output=True,
            text=True,
            env=_clean_environment(),
            timeout=60,
            check=False,
        )

    return run


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("lakegate: ")
    return line


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def test_a_bad_configuration_file_is_one_line(serve: Serve) -> None:
    """A key of the wrong type names the file and key, and says how to list every problem."""
    line = _one_line(serve(server={"host": "127.0.0.1", "port": "eighty"}))
    assert "gateway.yaml: server.port" in line
    assert "lakegate check-config" in line


def test_a_file_that_is_not_yaml_is_one_line(serve: Serve) -> None:
    """A YAML syntax error says where it is."""
    line = _one_line(serve(text="server: [unclosed\n"))
    assert "not valid YAML" in line
    assert "line " in line


def test_no_usable_kubernetes_configuration_is_one_line(serve: Serve) -> None:
    """in-cluster outside a pod names the mode and how to run without one."""
    line = _one_line(serve(kubernetes={"mode": "in-cluster"}))
    assert "no usable Kubernetes configuration" in line
    assert "kubernetes.mode" in line
    assert "off" in line


def test_a_port_in_use_is_one_line_naming_the_port_flag(serve: Serve, busy_port: int) -> None:
    """The port that is taken and the --port flag that changes it."""
    line = _one_line(serve("--port", str(busy_port)))
    assert f"port {busy_port}" in line
    assert "already in use" in line
    assert "--port" in line


def test_an_unreadable_ledger_is_one_line(serve: Serve, tmp_path: Path) -> None:
    """A file that is not a SQLite database names the path and the setting."""
    ledger = tmp_path / "not-a-ledger.db"
    ledger.write_bytes(b"this is not a database, it is a text file " * 50)
    line = _one_line(serve(store={"sqlite_path": str(ledger)}))
    assert "cannot open the run ledger" in line
    assert str(ledger) in line
    assert "store.sqlite_path" in line


def test_postgresql_without_a_dsn_is_one_line_naming_the_sources(serve: Serve) -> None:
    """store.backend postgresql (or postgres) needs one DSN source; the line names all three."""
    line = _one_line(serve(store={"backend": "postgresql"}))
    assert "store" in line
    assert all(source in line for source in ("dsn", "dsn_env", "dsn_file"))


def test_an_unreachable_postgresql_is_one_line(serve: Serve) -> None:
    """Nothing listens where the DSN points: the line says so and names the settings, and
    neither it nor any log line shows the DSN's password."""
    dsn = "postgresql://lakegate:Startup-Secret-99@127.0.0.1:9/x"
    result = serve(store={"backend": "postgres", "dsn": dsn})
    assert "Startup-Secret-99" not in result.stdout + result.stderr
    line = _one_line(result)
    assert "cannot open the run ledger" in line
    assert "cannot be reached" in line
    assert "store.dsn" in line


def test_debug_keeps_the_traceback(serve: Serve) -> None:
    """--debug is for finding out why: the traceback is there."""
    result = serve("--debug", kubernetes={"mode": "in-cluster"})
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_a_busy_demo_port_is_one_line_naming_the_flag(busy_port: int, tmp_path: Path) -> None:
    """`lakegate demo` on a taken port says which flag moves it."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "demo",
            "--port",
            str(busy_port),
            "--data-dir",
            str(tmp_path / "demo"),
            "--log-level",
            "error",
        ],
        capture_output=True,
        text=True,
        env=_clean_environment(),
        timeout=60,
        check=False,
    )
    line = _one_line(result)
    assert f"port {busy_port} on 127.0.0.1 is already in use" in line
    assert line.endswith("with --port")
