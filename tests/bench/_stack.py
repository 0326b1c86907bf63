"""What the gateway benchmarks share: the stack as real processes, and the load generator.

``running_stack(...)`` writes an emulator config and a gateway config (built by the test
fixtures' ``stack_configs``: one PAT or OAuth identity per namespace) into a temporary
directory, starts ``python -m gateway emulator databricks`` and ``python -m gateway serve``
as child processes on free loopback ports, waits until both answer, and stops them (SIGTERM,
then SIGKILL) on the way out. Their output goes to log files in that directory, whose tail is
printed if a process dies before it is ready.

``run_phase`` is the load generator of ``bench_emulator.py``: N workers on one aiohttp
session share a counter and stop at a request budget or a deadline; ``Phase`` reports
requests per second and latency percentiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

# The benchmarks run as scripts (sys.path[0] is tests/bench), and the stack's configs come
# from the test fixtures, so the repository root has to be importable.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fixtures.gateway import namespace_name, stack_configs  # noqa: E402

LOOPBACK = "127.0.0.1"
# A user of the emulator's that no namespace runs as: calls made straight to the emulator
# must not show up in any namespace's runs/list walk, or they would inflate the poller's work.
DIRECT_PAT = "dapi0000000000000000000000000000bench"
DIRECT_USER = "bench-direct@example.com"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

# Quotas far above any benchmark's load: admission must not be what is measured.
UNLIMITED_QUOTAS = {
    "max_active_runs": 1_000_000,
    "max_queued_runs": 1_000_000,
    "submissions_per_minute": 1_000_000.0,
    "burst": 1_000,  # the most a bucket may hold; the rate refills it far faster than used
}


def spec(name: str, tasks: int = 1) -> dict[str, Any]:
    """A runs/submit payload; how long it runs is the emulator config's business.

    One task by default; more make a pipeline of that many notebook tasks, each after the one
    before, with a job cluster and parameters of its own, as real specs are: 30 tasks are
    about 12 KB of JSON."""
    if tasks == 1:
        return {
            "run_name": name,
            "tasks": [
                {
                    "task_key": "main",
                    "existing_cluster_id": "0101-000000-bench",
                    "notebook_task": {"notebook_path": "/Shared/bench"},
                }
            ],
        }
    return {"run_name": name, "tasks": [_pipeline_task(i) for i in range(tasks)]}


def _pipeline_task(i: int) -> dict[str, Any]:
    return {
        "task_key": f"step_{i}",
        "depends_on": [{"task_key": f"step_{i - 1}"}] if i else [],
        "new_cluster": {
            "spark_version": "15.4.x-scala2.12",
            "node_type_id": "i3.xlarge",
            "num_workers": 8,
            "spark_conf": {"spark.sql.shuffle.partitions": "200"},
            "custom_tags": {"team": "data"},
        },
        "notebook_task": {
            "notebook_path": f"/Repos/team/etl/step_{i}",
            "base_parameters": {"date": "2026-12-01", "env": "prod"},
        },
        "libraries": [{"pypi": {"package": "pandas==2.2.2"}}],
        "timeout_seconds": 3600,
    }


def free_port() -> int:
    # The port is released before the child binds it; on a quiet loopback nobody takes it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    emulator_url: str
    gateway_url: str
    emulator_pid: int
    gateway_pid: int
    namespaces: list[str]
    ledger_path: Path
    workdir: Path
    settings: dict[str, Any] = field(default_factory=dict)
    # Stops the gateway with a signal and starts it again on the same config and ledger.
    _restart: Callable[[signal.Signals, Callable[[], None]], tuple[int, float]] | None = None

    def restart_gateway(
        self, how: signal.Signals, while_down: Callable[[], None] = lambda: None
    ) -> float:
        """Stop the gateway with ``how`` (SIGTERM: graceful; SIGKILL: a crash), call
        ``while_down``, start it again and wait until it is ready; returns the monotonic time
        the new process was started at."""
        assert self._restart is not None
        self.gateway_pid, started = self._restart(how, while_down)
        return started


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{url} exited with {process.returncode} before ready:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback only
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} was not ready within {START_TIMEOUT:g} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    # SIGTERM: the gateway shuts down gracefully; the emulator dies at once, which is fine.
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def running_stack(
    *,
    namespaces: int,
    lifecycle: dict[str, Any],
    poller: dict[str, Any] | None = None,
    ledger_dir: str | None = None,
    log_level: str = "info",
    event_loop: str = "asyncio",
    gateway_source: Path | None = None,
) -> Iterator[Stack]:
    """Emulator and gateway processes for ``namespaces`` tenants, stopped on exit.

    ``lifecycle`` is the emulator's run life cycle (make runs long to keep them active);
    ``poller`` the gateway's poller settings (default: the gateway's defaults); the ledger
    lives in ``ledger_dir`` (default: the temporary directory, on the same disk as /tmp).
    ``gateway_source`` is a checkout whose ``gateway`` package the gateway process runs
    (default: this one's); the emulator always runs this checkout's, so that two checkouts'
    gateways are measured against the same emulator.
    """
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lakegate-bench-")))
        ledger_root = workdir
        if ledger_dir is not None:
            ledger_root = Path(
                stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="lakegate-bench-", dir=ledger_dir)
                )
            )
        emulator_raw, gateway_raw, _ = stack_configs(
            namespaces,
            tmp_path=ledger_root,
            emulator={"lifecycle": lifecycle, "limits": {"max_active_runs": 1_000_000}},
        )
        emulator_raw["identity"]["users"].append({"name": DIRECT_USER, "pats": [DIRECT_PAT]})
        emulator_port, gateway_port = free_port(), free_port()
        emulator_url = f"http://{LOOPBACK}:{emulator_port}"
        gateway_url = f"http://{LOOPBACK}:{gateway_port}"
        # stack_configs tunes the poller for fast tests; a benchmark wants what operators get.
        gateway_raw.pop("poller", None)
        if poller:
            gateway_raw["poller"] = poller
        gateway_raw.pop("databricks", None)
        gateway_raw["server"] = {"host": LOOPBACK, "port": gateway_port, "event_loop": event_loop}
        gateway_raw["logging"] = {"level": log_level, "format": "json"}
        gateway_raw["workspaces"] = {"emulated": {"host": emulator_url}}
        gateway_raw["tenants"]["defaults"]["quotas"] = dict(UNLIMITED_QUOTAS)

        emulator_config, gateway_config = workdir / "emulator.yaml", workdir / "gateway.yaml"
        emulator_config.write_text(yaml.safe_dump(emulator_raw), encoding="utf-8")
        gateway_config.write_text(yaml.safe_dump(gateway_raw), encoding="utf-8")

        def start(name: str, args: list[str]) -> subprocess.Popen[bytes]:
            log = stack.enter_context((workdir / f"{name}.log").open("wb"))
            # python -m finds the package in its working directory before the editable
            # install's finder, which points at this checkout.
            source = ROOT if name == "emulator" or gateway_source is None else gateway_source
            process = subprocess.Popen(
                [sys.executable, "-m", "gateway", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=source,
                env={**os.environ, "PYTHONPATH": str(source)},
            )
            stack.callback(_stop, process)
            return process

        emulator = start(
            "emulator",
            ["emulator", "databricks", "--host", LOOPBACK, "--port", str(emulator_port),
             "--config", str(emulator_config), "--log-level", "warning"],
        )  # fmt: skip
        _wait_ready(f"{emulator_url}/emulator/stats", emulator, workdir / "emulator.log")
        gateway = start("gateway", ["serve", "--config", str(gateway_config)])
        _wait_ready(f"{gateway_url}/readyz", gateway, workdir / "gateway.log")
        restarts = itertools.count(1)

        def restart(how: signal.Signals, while_down: Callable[[], None]) -> tuple[int, float]:
            nonlocal gateway
            gateway.send_signal(how)
            gateway.wait(STOP_TIMEOUT)
            while_down()
            name = f"gateway-{next(restarts)}"
            started = time.monotonic()
            gateway = start(name, ["serve", "--config", str(gateway_config)])
            _wait_ready(f"{gateway_url}/readyz", gateway, workdir / f"{name}.log")
            return gateway.pid, started

        yield Stack(
            emulator_url=emulator_url,
            gateway_url=gateway_url,
            emulator_pid=emulator.pid,
            gateway_pid=gateway.pid,
            namespaces=[namespace_name(i) for i in range(namespaces)],
            ledger_path=Path(gateway_raw["store"]["sqlite_path"]),
            workdir=workdir,
            settings=gateway_raw,
            _restart=restart,
        )


# --- process figures ------------------------------------------------------------------------


def proc_status_kib(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def _stat_cpu_seconds(stat: Path) -> float:
    # Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    fields = stat.read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


def loop_thread_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process's main thread, where its event loop runs; the
    rest of ``cpu_seconds`` is its other threads' (the ledger's, executors'), ended ones too."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat"))


def machine_busy_seconds() -> float:
    """CPU time all processes have used so far (the busy columns of /proc/stat's cpu line)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuWatch:
    """How much CPU processes other than the benchmark's own took while it ran.

    The benchmarks share a small machine; other work on it (a test suite, a build) makes
    their figures noisy, and this says how much of that there was.
    """

    pids: tuple[int, ...]
    started: float = field(default_factory=time.monotonic)
    machine: float = field(default_factory=machine_busy_seconds)
    ours: float = 0.0

    def __post_init__(self) -> None:
        self.ours = self._ours()

    def _ours(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids) + cpu_seconds(os.getpid())

    def report(self) -> str:
        wall = time.monotonic() - self.started
        other = max(0.0, machine_busy_seconds() - self.machine - (self._ours() - self.ours))
        capacity = wall * (os.cpu_count() or 1)
        note = "" if other / capacity < 0.05 else ": figures are noisy, rerun on a quiet machine"
        return (
            f"other processes used {other:.1f} CPU s of {capacity:.0f} available "
            f"({other / capacity:.0%}) during the bench{note}"
        )


async def emulator_counts(http: aiohttp.ClientSession, emulator_url: str) -> dict[str, int]:
    """Requests the emulator has answered, as ``{"METHOD path status": count}``."""
    async with http.get(f"{emulator_url}/emulator/stats") as resp:
        resp.raise_for_status()
        stats = await resp.json()
    return {f"{r['method']} {r['path']} {r['status']}": r["count"] for r in stats["requests"]}


def count_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}


def by_endpoint(counts: dict[str, int]) -> dict[str, int]:
    """Databricks calls by endpoint ("runs/list", "oidc/v1/token", "runs/get [429]").

    The emulator's own /emulator/ routes are left out: only the benchmark calls them.
    """
    out: dict[str, int] = {}
    for key, n in counts.items():
        _method, path, status = key.split(" ")
        if path.startswith("/emulator/"):
            continue
        name = path.rpartition("/jobs/")[2] if "/jobs/" in path else path.lstrip("/")
        label = name if status == "200" else f"{name} [{status}]"
        out[label] = out.get(label, 0) + n
    return dict(sorted(out.items()))


# --- the load generator ---------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, fraction: float) -> float:
        """Latency at ``fraction`` (nearest rank), in milliseconds."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000

    def report(self) -> str:
        n = len(self.latencies)
        if not n:
            return f"{self.name:<22} no successful requests; errors {self.errors}"
        errors = sum(self.errors.values())
        return (
            f"{self.name:<22} {n:>6} ok {errors:>4} err {self.throughput:>7.0f} req/s"
            f"   p50 {self.percentile(0.5):>6.2f}   p90 {self.percentile(0.9):>6.2f}"
            f"   p99 {self.percentile(0.99):>7.2f}   max {max(self.latencies) * 1000:>7.2f} ms"
        )


async def run_phase(
    name: str,
    workers: int,
    budget: int,
    seconds: float,
    call: Callable[[int], Awaitable[None]],
) -> Phase:
    """``workers`` concurrent callers share ``budget`` calls; stop early after ``seconds``."""
    phase = Phase(name)
    counter = itertools.count()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            i = next(counter)
            if i >= budget:
                return
            started = time.perf_counter()
            try:
                await call(i)
            except (aiohttp.ClientError, AssertionError, TimeoutError) as exc:
                key = type(exc).__name__ + (f": {exc}" if isinstance(exc, AssertionError) else "")
                phase.errors[key] = phase.errors.get(key, 0) + 1
            else:
                phase.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    phase.elapsed = time.perf_counter() - started
    return phase
