"""lakegate's own commands as subprocesses, for end-to-end tests that kill and restart them.

``ManagedProcess`` runs one command line (``sys.executable -m gateway ...``) with its stdout
and stderr appended to a log file, waits until an HTTP probe answers, and can be killed with
SIGKILL (a crash: no cleanup runs) and started again with the same command line, so on the
same port and files. ``ProcessGroup`` owns several and kills every one of them at teardown,
then prints the tail of each log: pytest shows that output only when the test failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import aiohttp

ReadyWhen = Callable[[int], bool]


def answers_200(status: int) -> bool:
    """The default readiness test: the probe answered 200 OK."""
    return status == 200


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PORT = 10_000


def _ephemeral_floor() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def free_port(*, besides: Collection[int] = ()) -> int:
    """A free loopback port below the ephemeral range, so it stays free while nobody listens.

    A port from the ephemeral range (what binding to port 0 gives) can be taken as the source
    port of any outgoing connection, ours included, in the moment a killed server is down; its
    restart on that port would then fail. Ports below the range are only ever taken on request.
    """
    floor = _ephemeral_floor()
    candidates = list(range(_LOWEST_PORT, floor))
    random.shuffle(candidates)
    for port in candidates[:200]:
        if port in besides:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port between {_LOWEST_PORT} and {floor}")


def lakegate_command(*args: str) -> list[str]:
    """``python -m gateway ARGS`` with the interpreter running the tests."""
    return [sys.executable, "-m", "gateway", *args]


def _child_environment() -> dict[str, str]:
    # LAKEGATE_* variables override gateway.yaml; a developer's shell must not change what the
    # test configured. Unbuffered output keeps the last lines before a SIGKILL in the log.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEGATE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ManagedProcess:
    """One command that can be started, probed, killed and started again."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        probe_url: str,
        ready_when: ReadyWhen = answers_200,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.probe_url = probe_url
        self.ready_when = ready_when
        self.starts = 0
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """The running command's process id, for CPU and memory figures."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self, session: aiohttp.ClientSession, *, within: float = 30.0) -> float:
        """Start the command and wait until the probe answers; return the seconds it took."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.starts += 1
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"\n--- {self.name}: start {self.starts} ---\n".encode())
            log.flush()
            # The child holds its own copy of the descriptor; ours can close at once.
            self._process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=_child_environment(),
            )
        await self._wait_ready(session, within)
        return time.monotonic() - began

    async def _wait_ready(self, session: aiohttp.ClientSession, within: float) -> None:
        deadline = time.monotonic() + within
        probe_timeout = aiohttp.ClientTimeout(total=2.0)
        while True:
            process = self._process
            if process is None or process.returncode is not None:
                code = None if process is None else process.returncode
                raise RuntimeError(f"{self.name} exited with {code} before it was ready")
            try:
                async with session.get(self.probe_url, timeout=probe_timeout) as response:
                    if self.ready_when(response.status):
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} was not ready within {within} s")
            await asyncio.sleep(0.05)

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` (e.g. SIGHUP, to reload) to the running command."""
        if self._process is None or self._process.returncode is not None:
            raise RuntimeError(f"{self.name} is not running")
        self._process.send_signal(signum)

    async def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish requests or close its files."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        # Reaped before anything restarts, so the port and the ledger are free.
        await process.wait()

    async def terminate(self) -> int | None:
        """SIGTERM, as Kubernetes stops a pod; the exit code once the process has finished."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        return await process.wait()

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])


class ProcessGroup:
    """The processes of one test; ``aclose`` kills them all and prints their logs' tails."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: list[ManagedProcess] = []

    def add(
        self,
        name: str,
        argv: Sequence[str],
        *,
        probe_url: str,
        ready_when: ReadyWhen = answers_200,
    ) -> ManagedProcess:
        process = ManagedProcess(
            name,
            argv,
            log_path=self.directory / f"{name}.log",
            probe_url=probe_url,
            ready_when=ready_when,
        )
        self.processes.append(process)
        return process

    async def aclose(self) -> None:
        # Killed, not stopped: teardown must not wait on a process that is stuck. One that
        # cannot be reaped must not keep the others alive.
        problems: list[BaseException] = []
        for process in reversed(self.processes):
            try:
                await process.kill()
            except (OSError, RuntimeError) as exc:
                problems.append(exc)
        for process in self.processes:
            print(f"===== {process.name}: {process.log_path} (last lines) =====")
            print(process.tail())
        if problems:
            raise problems[0]
