"""One virtual environment per real client, built from its pin file and cached between runs.

``ensure(client)`` returns a ``ClientEnv`` for ``tests/clients/envs/<client>.txt``. The
environment lives outside the checkout, in ``${XDG_CACHE_HOME:-~/.cache}/lakegate/client-envs/
<client>-<hash>``, where the hash covers the pin file and the interpreter's version, so a changed
pin (or a new Python) builds a fresh one and an unchanged one is reused as is. A marker file
written last says the build finished: a build that died half-way is built again.

Builds hold an exclusive ``flock`` per client, so two test runs (two worktrees, CI and a
developer) never write the same directory at once; the second waits and then reuses the first's
environment. Environments of the same client under older hashes are removed under that lock.

A failed build raises ``EnvBuildError`` with the tail of pip's output.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PINS = Path(__file__).resolve().parent / "envs"
COMPLETE = ".lakegate-complete"
# A cold Airflow or Prefect build downloads a few hundred packages; a hung index must not hang
# the run forever.
BUILD_TIMEOUT_SECONDS = 1500
REQUIRED_VARIABLE = "LAKEGATE_CLIENT_ENVS"


class EnvBuildError(RuntimeError):
    """The client's environment could not be built; the message says why."""


@dataclass(frozen=True)
class ClientEnv:
    client: str
    path: Path
    built_seconds: float  # 0 when a cached environment was reused

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name


def builds_required() -> bool:
    """Whether a failed build must fail the run (CI) rather than skip the client's tests."""
    return os.environ.get(REQUIRED_VARIABLE, "").strip().lower() == "required"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lakegate" / "client-envs"


def pin_file(client: str, pins: Path = PINS) -> Path:
    path = pins / f"{client}.txt"
    if not path.is_file():
        raise EnvBuildError(f"no pin file for client '{client}' at {path}")
    return path


def env_key(client: str, pins: Path = PINS) -> str:
    """``<client>-<hash>``: what names the cached environment for the current pins."""
    digest = hashlib.sha256(pin_file(client, pins).read_bytes())
    digest.update(sys.version.encode())
    return f"{client}-{digest.hexdigest()[:16]}"


@contextmanager
def _locked(root: Path, client: str) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{client}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(argv: list[str], log: Path) -> None:
    with log.open("ab") as out:
        try:
            done = subprocess.run(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=BUILD_TIMEOUT_SECONDS,
                check=False,
                env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
            )
        except subprocess.TimeoutExpired as exc:
            raise EnvBuildError(f"{argv[2:5]} took over {BUILD_TIMEOUT_SECONDS} s") from exc
    if done.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise EnvBuildError(
            f"{' '.join(argv[:5])} ... exited {done.returncode}; log {log}:\n" + "\n".join(tail)
        )


def _remove_stale(root: Path, client: str, keep: str) -> None:
    # A name like "<client>-<16 hex>" only: another client's name may start with this one's.
    for path in root.glob(f"{client}-*"):
        suffix = path.name[len(client) + 1 :]
        if path.name != keep and len(suffix) == 16 and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _build(pins: Path, path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    log = path.parent / f"{path.name}.log"
    log.write_text(f"building from {pins}\n", encoding="utf-8")
    _run([sys.executable, "-m", "venv", str(path)], log)
    python = str(path / "bin" / "python")
    _run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], log)
    # Every package is pinned, dependencies included, so the resolver has one choice to make.
    _run([python, "-m", "pip", "install", "--quiet", "-r", str(pins)], log)
    (path / COMPLETE).write_text(pins.read_text(encoding="utf-8"), encoding="utf-8")


def ensure(client: str, *, pins: Path = PINS, root: Path | None = None) -> ClientEnv:
    """The client's environment for its current pins: reused when built, else built now.

    ``pins`` (the folder of pin files) and ``root`` (the cache) are for the builder's own tests.
    """
    root = root or cache_root()
    key = env_key(client, pins)
    path = root / key
    with _locked(root, client):
        if (path / COMPLETE).is_file():
            return ClientEnv(client, path, 0.0)
        began = time.monotonic()
        try:
            _build(pin_file(client, pins), path)
        except (OSError, EnvBuildError) as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise EnvBuildError(f"client '{client}': {exc}") from exc
        _remove_stale(root, client, key)
        return ClientEnv(client, path, time.monotonic() - began)
