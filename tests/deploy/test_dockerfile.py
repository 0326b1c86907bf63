"""The Dockerfile agrees with the project and the Deployment (Docker itself is not needed)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gateway.settings import load_settings
from tests.deploy.manifests import ROOT, container, container_port, mount_for, pod_spec, volume_with

Instruction = tuple[str, str]


def _instructions() -> list[Instruction]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text("utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    pairs = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _stages() -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for keyword, rest in _instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


def _runtime() -> list[Instruction]:
    return _stages()[-1]


def _values(stage: list[Instruction], keyword: str) -> list[str]:
    return [rest for key, rest in stage if key == keyword]


def test_multi_stage_build_on_python_slim() -> None:
    """A build stage makes the wheels; the final stage starts again from python:3.11-slim."""
    args = dict(a.split("=", 1) for key, a in _instructions() if key == "ARG" and "=" in a)
    stages = _stages()
    assert len(stages) >= 2
    bases = [_values(stage, "FROM")[0].split()[0] for stage in stages]
    assert {base.replace("${PYTHON_IMAGE}", args["PYTHON_IMAGE"]) for base in bases} == {
        "python:3.11-slim"
    }
    assert any("pip wheel" in run for stage in stages[:-1] for run in _values(stage, "RUN"))


def test_runtime_stage_installs_no_build_tools() -> None:
    """The final image gets the venv from wheels only: no compiler, no apt packages, no network."""
    runs = " ".join(_values(_runtime(), "RUN"))
    for tool in ("apt-get", "apk ", "gcc", "build-essential"):
        assert tool not in runs
    assert "--no-index" in runs


def test_environment_and_user() -> None:
    """Unbuffered, no runtime bytecode, and the same numeric user the pod runs as."""
    env = " ".join(_values(_runtime(), "ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    (user,) = _values(_runtime(), "USER")
    uid, _, gid = user.partition(":")
    security = pod_spec()["securityContext"]
    assert int(uid) == security["runAsUser"]
    assert int(gid or uid) == security["runAsGroup"]


def test_entrypoint_is_the_console_script_and_cmd_matches_the_deployment() -> None:
    """ENTRYPOINT is the `lakegate` script; CMD is what the Deployment passes as args."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["scripts"]
    (entrypoint,) = _values(_runtime(), "ENTRYPOINT")
    assert json.loads(entrypoint) == ["lakegate"]
    assert "lakegate" in scripts
    (cmd,) = _values(_runtime(), "CMD")
    assert json.loads(cmd) == container()["args"]


def test_port_and_ledger_volume_match_the_deployment() -> None:
    """EXPOSE is the container port; VOLUME is where the ledger PVC is mounted."""
    (exposed,) = _values(_runtime(), "EXPOSE")
    assert int(exposed.split("/")[0]) == container_port("http")
    (declared,) = _values(_runtime(), "VOLUME")
    ledger = mount_for(volume_with("persistentVolumeClaim")["name"])["mountPath"]
    assert json.loads(declared) == [ledger]


def test_copied_files_are_in_the_build_context() -> None:
    """Each COPY from the context names a file the allow-list .dockerignore lets through."""
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
        if line.startswith("!")
    }
    for stage in _stages():
        for copy in _values(stage, "COPY"):
            if copy.startswith("--from"):
                continue
            *sources, _destination = copy.split()
            for source in sources:
                assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"
                assert (ROOT / source).exists(), f"COPY {source} does not exist"


# --- the image outside Kubernetes -----------------------------------------------------------

DOCKER_CONFIG = ROOT / "config" / "docker" / "gateway.yaml"


def test_the_default_command_reads_the_image_configuration() -> None:
    """CMD's --config is where the runtime stage copies config/docker/gateway.yaml."""
    (cmd,) = _values(_runtime(), "CMD")
    args = json.loads(cmd)
    config = args[args.index("--config") + 1]
    copies = [c.split() for c in _values(_runtime(), "COPY") if not c.startswith("--from")]
    assert ["config/docker/gateway.yaml", str(Path(config).parent) + "/"] in copies


def test_the_image_configuration_runs_without_kubernetes() -> None:
    """Outside a cluster there is nothing to ask: kubernetes.mode off, and nobody let in."""
    settings = load_settings(DOCKER_CONFIG, environ={})
    assert settings.kubernetes.mode == "off"
    assert settings.callers.methods == ()
    assert settings.workspaces == {}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.e2e
def test_the_default_command_starts_outside_kubernetes(tmp_path: Path) -> None:
    """`docker run` without a mount: the gateway starts, /healthz is 200 and /readyz says what
    to configure; SIGTERM stops it cleanly."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEGATE_", "KUBERNETES_"))}
    env |= {
        "LAKEGATE_SERVER__HOST": "127.0.0.1",
        "LAKEGATE_SERVER__PORT": str(port),
        "LAKEGATE_STORE__SQLITE_PATH": str(tmp_path / "lakegate.db"),
        "LAKEGATE_LOGGING__LEVEL": "error",
    }
    command = [sys.executable, "-m", "gateway", "serve", "--config", str(DOCKER_CONFIG)]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as gateway:
        try:
            assert gateway.stdout is not None
            banner = gateway.stdout.readline()
            assert f"serving on http://127.0.0.1:{port}" in banner, gateway.stderr
            base = f"http://127.0.0.1:{port}"
            # Plain http on loopback, to the process just started.
            with urllib.request.urlopen(f"{base}/healthz", timeout=10) as healthy:  # noqa: S310
                assert healthy.status == 200
            with pytest.raises(urllib.error.HTTPError) as not_ready:
                urllib.request.urlopen(f"{base}/readyz", timeout=10)  # noqa: S310
            body = json.loads(not_ready.value.read())
            assert not_ready.value.code == 503
            assert not body["checks"]["callers"]["ok"]
            assert not body["checks"]["workspaces"]["ok"]
        finally:
            gateway.send_signal(signal.SIGTERM)
            _, err = gateway.communicate(timeout=30)
    assert gateway.returncode == 0, err
    assert "Traceback" not in err
