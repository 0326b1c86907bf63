"""Cost of a warm token lookup, and of resolving a cold namespace (issue "tenant identities").

    .venv/bin/python tests/bench/bench_identity.py [--namespaces 200] [--concurrency 100]
        [--rounds 3] [--warm-ops 200000] [--tasks 1000] [--repeats 5] [--in-process]

The identity edge is wired as ``gateway.app`` wires it: one ``TokenCache`` reporting to the
app's ``Metrics``, a ``Builder`` over one aiohttp session, a ``KubeClient`` and its
ServiceAccount informer (both selectors, cluster-wide, watching), and a ``NamespaceResolver``
over them. It talks over real loopback sockets to the fake Kubernetes API and the Databricks
emulator, which by default run together in ONE child process: on a 2-core machine each of the
two processes can have a core, and the servers' work (the fake API signs every TokenRequest
with RSA-2048) does not run on the benchmark's event loop; their CPU is printed apart, from
/proc (10 ms ticks, so per-namespace figures are only good over many namespaces).
``--in-process`` serves both from the benchmark's own event loop instead, to see what
sharing one core costs.

Namespaces ``fed-NNNN`` each hold a ServiceAccount ``etl`` labelled
``lakegate.io/databricks-enabled=true`` and annotated with its own service principal's client
id, whose federation policy trusts the fake API as issuer for exactly that subject: resolving
is an informer lookup, the first token a TokenRequest and a token exchange. Namespaces
``m2m-NNNN`` each hold a Secret ``databricks-oauth`` (client id and secret of their own
service principal): resolving reads the Secret, the first token reads it again (secrets are
read at fetch time, for rotation) and makes a client_credentials grant. Every namespace is
used once, so each is cold in the resolver, the token cache and its token endpoint. One of
each kind is resolved first and not counted (printed apart): connections and the emulator's
fetch of the issuer's JWKS are one-off costs.

Phases, in the order they run:

1. cold, one at a time: ``resolve(ns)`` then the first ``credential.token()``, each timed, and
   inside them every Kubernetes and Databricks call (a wrapper of the Kube edge and an aiohttp
   trace on the Databricks session; a contextvar says which namespace a call is for);
2. cold, ``--concurrency`` namespaces at once, ``--rounds`` times: throughput and latency;
3. re-resolution: what a namespace pays every ``resolution_ttl_seconds`` (30 s) once its
   resolution has expired but its token is still cached;
4. warm: ``await credential.token()`` with the token FRESH, in one task and in ``--tasks``
   interleaved tasks (next to the same loop with the lookup taken out), with the app's
   ``Metrics`` observer and without one; ``resolve(ns)`` within its TTL. The servers' request
   counts must not move during this phase, which proves every lookup was a hit.

Everything is bounded by counts and by a timeout per phase; the script prints figures and
exits non-zero if any resolution failed. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import multiprocessing
import os
import platform
import statistics
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

import aiohttp

from gateway import logs
from gateway.databricks.auth import AccessToken
from gateway.emulator.databricks import EmulatorConfig, EmulatorServer
from gateway.emulator.databricks.identity_config import PrincipalsUpdate
from gateway.emulator.kubernetes import KubeApiServer, KubeEmulatorConfig
from gateway.identity import plans
from gateway.identity.builders import Builder
from gateway.identity.cache import CachedCredential, CacheKey, TokenCache
from gateway.identity.plans import Account
from gateway.identity.resolver import NamespaceResolver
from gateway.kube import InformerOptions, KubeClient, KubeConfig, MintedToken
from gateway.kube.informer import ServiceAccountInformer
from gateway.metrics import Metrics
from gateway.settings import Settings

LOOPBACK = "127.0.0.1"
CALLER_TOKEN = "lakegate-bench-caller-token-00000000000000"
SERVICE_ACCOUNT = "etl"
TOKEN_PATH = "/oidc/v1/token"
# A hung phase must not hang the script: generous next to the seconds a phase takes.
PHASE_TIMEOUT = 120.0
START_TIMEOUT = 60.0
# What gateway.app.kube_config makes of the default kubernetes.request_timeout_seconds.
KUBE_REQUEST_TIMEOUT = (5.0, 10.0)


# --- the tenants ----------------------------------------------------------------------------


def fed_namespace(i: int) -> str:
    return f"fed-{i:04d}"


def m2m_namespace(i: int) -> str:
    return f"m2m-{i:04d}"


def fed_client_id(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def m2m_client_id(i: int) -> str:
    return f"10000000-0000-4000-8000-{i:012d}"


def m2m_secret(i: int) -> str:
    return f"dose-bench-{i:012d}"


def kube_emulator_config(count: int) -> KubeEmulatorConfig:
    namespaces: dict[str, Any] = {}
    for i in range(count):
        labelled = {
            "labels": {plans.ENABLED_LABELS[0]: "true"},
            "annotations": {plans.CLIENT_ID_ANNOTATIONS[0]: fed_client_id(i)},
        }
        namespaces[fed_namespace(i)] = {"service_accounts": {SERVICE_ACCOUNT: labelled}}
        secret = {"client_id": m2m_client_id(i), "client_secret": m2m_secret(i)}
        namespaces[m2m_namespace(i)] = {
            # An unlabelled ServiceAccount, as every namespace has: discovery must pass it by.
            "service_accounts": {"default": {}},
            "secrets": {plans.OAUTH_SECRET: {"string_data": secret}},
        }
    return KubeEmulatorConfig.model_validate(
        {"callers": [{"token": CALLER_TOKEN}], "namespaces": namespaces}
    )


def principals(count: int, issuer: str, workspace: str) -> PrincipalsUpdate:
    """One service principal per namespace; a federated one trusts exactly its ServiceAccount.

    The audience is the one the gateway asks for when nothing names another (the workspace's
    token endpoint URL), so it is known only once the emulator listens: hence added after start.
    """
    audience = workspace + TOKEN_PATH
    sps: list[dict[str, Any]] = []
    for i in range(count):
        subject = f"system:serviceaccount:{fed_namespace(i)}:{SERVICE_ACCOUNT}"
        policy = {"issuer": issuer, "audiences": [audience], "subject": subject}
        sps.append(
            {
                "name": fed_namespace(i),
                "application_id": fed_client_id(i),
                "federation_policies": [policy],
            }
        )
        sps.append(
            {
                "name": m2m_namespace(i),
                "application_id": m2m_client_id(i),
                "secrets": [m2m_secret(i)],
            }
        )
    return PrincipalsUpdate.model_validate({"service_principals": sps})


# --- the servers ----------------------------------------------------------------------------

Counts = dict[str, int]


@asynccontextmanager
async def started_servers(count: int) -> AsyncIterator[tuple[KubeApiServer, EmulatorServer]]:
    async with (
        KubeApiServer(kube_emulator_config(count), host=LOOPBACK) as kube,
        EmulatorServer(EmulatorConfig(), host=LOOPBACK) as workspace,
    ):
        workspace.identity.add_principals(principals(count, kube.issuer, workspace.url))
        yield kube, workspace


def server_counts(kube: KubeApiServer, workspace: EmulatorServer) -> Counts:
    """Requests each server answered so far, as ``{"k8s create serviceaccounts/token 201": n}``."""
    out: Counts = {}
    for r in kube.stats()["requests"]:
        out[f"k8s {r['verb']} {r['resource']} {r['status']}"] = r["count"]
    for r in workspace.stats()["requests"]:
        out[f"databricks {r['method']} {r['path']} {r['status']}"] = r["count"]
    return out


class Servers(Protocol):
    @property
    def kube_url(self) -> str: ...
    @property
    def workspace_url(self) -> str: ...
    @property
    def where(self) -> str: ...
    @property
    def separate(self) -> bool:
        """Whether the servers' CPU is apart from ours (it can then be told apart)."""
        ...

    async def counts(self) -> Counts: ...
    def server_cpu_seconds(self) -> float: ...


@dataclass
class InProcess:
    kube: KubeApiServer
    workspace: EmulatorServer
    where: str = "in the benchmark's own event loop (--in-process)"
    separate: bool = False

    @property
    def kube_url(self) -> str:
        return self.kube.url

    @property
    def workspace_url(self) -> str:
        return self.workspace.url

    async def counts(self) -> Counts:
        return server_counts(self.kube, self.workspace)

    def server_cpu_seconds(self) -> float:
        return 0.0  # included in ours


async def _serve_until_told(conn: Connection, count: int) -> None:
    async with started_servers(count) as (kube, workspace):
        conn.send((kube.url, workspace.url))
        loop = asyncio.get_running_loop()
        while True:
            # Waiting for the parent must not block the loop the servers answer on.
            command = await loop.run_in_executor(None, conn.recv)
            if command != "counts":
                return
            conn.send(server_counts(kube, workspace))


def serve_in_child(conn: Connection, count: int) -> None:
    logs.configure(level="warning", fmt="console")
    asyncio.run(_serve_until_told(conn, count))


@dataclass
class ChildProcess:
    conn: Connection
    pid: int
    kube_url: str
    workspace_url: str
    where: str = "both in one child process (the benchmark keeps the other core)"
    separate: bool = True
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def counts(self) -> Counts:
        async with self._lock:
            return await asyncio.to_thread(self._ask_counts)

    def _ask_counts(self) -> Counts:
        self.conn.send("counts")
        if not self.conn.poll(30):
            raise RuntimeError("the server process did not answer within 30 s")
        counts: Counts = self.conn.recv()
        return counts

    def server_cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)


@contextmanager
def child_servers(count: int) -> Iterator[tuple[Connection, int, str, str]]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=serve_in_child, args=(child, count), daemon=True)
    process.start()
    try:
        if not parent.poll(START_TIMEOUT):
            raise RuntimeError(f"the server process did not start within {START_TIMEOUT:g} s")
        kube_url, workspace_url = parent.recv()
        assert process.pid is not None
        yield parent, process.pid, kube_url, workspace_url
    finally:
        if process.is_alive():
            parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join(5)


# --- machine figures ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process so far (Linux); 0 where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU all processes have used so far (the busy columns of /proc/stat); 0 without /proc."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} CPUs ({cpu_model()}), shared; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, aiohttp "
        f"{aiohttp.__version__}; load average {load} at start"
    )


# --- timing calls inside a resolution -------------------------------------------------------


@dataclass
class Sample:
    """One namespace's cold resolution: stage times, and the calls made inside each stage."""

    namespace: str
    stage: str = "resolve"
    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, float] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    error: str | None = None

    def record(self, call: str, started: float) -> None:
        key = f"{self.stage}: {call}"
        self.calls[key] = self.calls.get(key, 0.0) + time.perf_counter() - started
        self.counts[key] += 1


# Which namespace's resolution a call belongs to. The resolver's and the token cache's tasks
# are created inside the caller's context, so they see the caller's sample.
CURRENT: contextvars.ContextVar[Sample | None] = contextvars.ContextVar(
    "bench_identity_sample", default=None
)


def _record(call: str, started: float) -> None:
    sample = CURRENT.get()
    if sample is not None:
        sample.record(call, started)


class TimedKube:
    """``KubeClient``'s two identity calls, timed into the current sample (~1 us a call)."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        started = time.perf_counter()
        try:
            return await self._kube.read_secret(namespace, name)
        finally:
            _record("k8s GET Secret", started)

    async def mint_token(
        self,
        namespace: str,
        service_account: str,
        *,
        audiences: Sequence[str],
        expiration_seconds: int = 3600,
    ) -> MintedToken:
        started = time.perf_counter()
        try:
            return await self._kube.mint_token(
                namespace,
                service_account,
                audiences=audiences,
                expiration_seconds=expiration_seconds,
            )
        finally:
            _record("k8s POST TokenRequest", started)


class TimedAccounts:
    """The informer's reads, timed: while it watches they are served from memory."""

    def __init__(self, informer: ServiceAccountInformer) -> None:
        self._informer = informer

    async def get(self, namespace: str, name: str) -> Account | None:
        started = time.perf_counter()
        try:
            return await self._informer.get(namespace, name)
        finally:
            _record("informer lookup", started)

    async def in_namespace(self, namespace: str) -> Sequence[Account]:
        started = time.perf_counter()
        try:
            return await self._informer.in_namespace(namespace)
        finally:
            _record("informer lookup", started)


def databricks_trace() -> aiohttp.TraceConfig:
    """Times every request of the Databricks session, to the response headers."""
    trace = aiohttp.TraceConfig()

    async def start(
        _session: aiohttp.ClientSession, ctx: SimpleNamespace, _p: aiohttp.TraceRequestStartParams
    ) -> None:
        ctx.started = time.perf_counter()

    async def end(
        _session: aiohttp.ClientSession, ctx: SimpleNamespace, p: aiohttp.TraceRequestEndParams
    ) -> None:
        _record(f"Databricks {p.method} {p.url.path}", ctx.started)

    async def failed(
        _s: aiohttp.ClientSession, ctx: SimpleNamespace, p: aiohttp.TraceRequestExceptionParams
    ) -> None:
        _record(f"Databricks {p.method} {p.url.path} (failed)", ctx.started)

    trace.on_request_start.append(start)
    trace.on_request_end.append(end)
    trace.on_request_exception.append(failed)
    return trace


# --- the gateway side, wired as gateway.app wires it ----------------------------------------


@dataclass
class Gateway:
    settings: Settings
    cache: TokenCache
    builder: Builder
    resolver: NamespaceResolver
    informer: ServiceAccountInformer
    accounts: TimedAccounts
    kube: TimedKube

    def fresh_resolver(self) -> NamespaceResolver:
        """Another resolver on the same builder and token cache: every resolution expired."""
        return NamespaceResolver(
            self.settings,
            builder=self.builder,
            environ={},
            accounts=self.accounts,
            kube=self.kube,
        )


@asynccontextmanager
async def gateway_side(servers: Servers) -> AsyncIterator[Gateway]:
    settings = Settings.model_validate(
        {
            "workspaces": {"emulated": {"host": servers.workspace_url}},
            "tenants": {"defaults": {"workspace": "emulated"}},
        }
    )
    # As gateway.app builds its session: trust_env only when the environment names a proxy
    # (with it aiohttp looks up ~/.netrc and the proxy variables in a thread on every request).
    connector = aiohttp.TCPConnector(limit=200, limit_per_host=100, ttl_dns_cache=300)
    session = aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": "lakegate-bench"},
        trust_env=bool(urllib.request.getproxies()),
        trace_configs=[databricks_trace()],
    )
    cache = TokenCache(max_entries=settings.identity.token_cache_size, observer=Metrics())
    config = KubeConfig(
        mode="explicit",
        host=servers.kube_url,
        token=CALLER_TOKEN,
        request_timeout=KUBE_REQUEST_TIMEOUT,
    )
    try:
        async with await KubeClient.open(config) as kube:
            options = InformerOptions(
                watch_timeout_seconds=settings.kubernetes.watch_timeout_seconds,
                resync_seconds=settings.kubernetes.resync_seconds,
                fallback_ttl_seconds=settings.kubernetes.fallback_ttl_seconds,
            )
            informer = kube.service_account_informer(
                selectors=plans.ENABLED_SELECTORS, options=options
            )
            timed_kube, accounts = TimedKube(kube), TimedAccounts(informer)
            builder = Builder(session, cache, settings.identity, timed_kube)
            resolver = NamespaceResolver(
                settings, builder=builder, environ={}, accounts=accounts, kube=timed_kube
            )
            informer.add_listener(resolver.on_account_change)
            informer.start()
            async with asyncio.timeout(START_TIMEOUT):
                await informer.ready.wait()
            yield Gateway(settings, cache, builder, resolver, informer, accounts, timed_kube)
            await resolver.aclose()
            await informer.aclose()
    finally:
        await cache.aclose()
        await session.close()


# --- cold namespaces ------------------------------------------------------------------------


async def first_use(resolver: NamespaceResolver, namespace: str) -> Sample:
    """resolve() then the first token(), timed apart; a failure is kept, not raised."""
    sample = Sample(namespace)
    reset = CURRENT.set(sample)
    try:
        started = time.perf_counter()
        identity = await resolver.resolve(namespace)
        resolved = time.perf_counter()
        sample.stage = "first token"
        await identity.credential.token()
        done = time.perf_counter()
    except Exception as exc:
        sample.error = f"{type(exc).__name__}: {exc}"
        return sample
    finally:
        CURRENT.reset(reset)
    sample.seconds = {
        "resolve": resolved - started,
        "first token": done - resolved,
        "total": done - started,
    }
    return sample


def nearest_rank(ordered: Sequence[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def latency_row(label: str, seconds: Sequence[float], indent: int = 2) -> str:
    ordered = sorted(seconds)
    p50, p90, p99 = (nearest_rank(ordered, f) * 1000 for f in (0.5, 0.9, 0.99))
    return (
        f"{'':<{indent}}{label:<{68 - indent}}{p50:>8.2f}{p90:>8.2f}{p99:>8.2f}"
        f"{ordered[-1] * 1000:>8.2f}"
    )


HEADER = f"  {'ms (nearest-rank percentiles)':<66}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}"


# The stages of a sample, as printed; the calls made inside a stage are listed under it.
STAGES = {
    "resolve": "resolve()",
    "first token": "first credential.token()",
    "total": "resolve() + first token()",
}


def breakdown(samples: Sequence[Sample]) -> list[str]:
    """Stage rows, each followed by the calls made inside it (calls per namespace in [])."""
    ok = [s for s in samples if s.error is None]
    if not ok:
        return ["  no namespace resolved"]
    lines: list[str] = []
    for stage, title in STAGES.items():
        lines.append(latency_row(title, [s.seconds[stage] for s in ok]))
        prefix = f"{stage}: "
        calls = sorted({c for s in ok for c in s.calls if c.startswith(prefix)})
        for call in calls:
            per_ns = sum(s.counts[call] for s in ok) / len(ok)
            label = f"{call.removeprefix(prefix)} [{per_ns:g}]"
            lines.append(latency_row(label, [s.calls[call] for s in ok if call in s.calls], 6))
    return lines


def errors(samples: Sequence[Sample]) -> list[str]:
    failed = Counter(s.error for s in samples if s.error is not None)
    return [f"  FAILED {n} x {error}" for error, n in failed.most_common()]


def counts_delta(before: Counts, after: Counts) -> Counts:
    return {k: n - before.get(k, 0) for k, n in sorted(after.items()) if n != before.get(k, 0)}


def per_namespace(delta: Counts, namespaces: int) -> str:
    parts = [f"{key} x{n / namespaces:g}" for key, n in delta.items()]
    return "; ".join(parts) or "none"


@dataclass
class Kind:
    name: str
    namespace: Callable[[int], str]


KINDS = (
    Kind("federation: labelled ServiceAccount -> TokenRequest + token exchange", fed_namespace),
    Kind("oauth-m2m: Secret databricks-oauth -> client_credentials", m2m_namespace),
)


@dataclass
class Allocation:
    """Namespace indices per phase; every namespace is resolved exactly once cold."""

    sequential: range
    rounds: list[range]


def allocate(args: argparse.Namespace) -> Allocation:
    start = 1 + args.namespaces  # index 0 is the warm-up namespace
    rounds = [
        range(start + r * args.concurrency, start + (r + 1) * args.concurrency)
        for r in range(args.rounds)
    ]
    return Allocation(range(1, 1 + args.namespaces), rounds)


async def first_ever(gw: Gateway) -> list[str]:
    lines = ["first namespace of each kind (not counted: connections, the issuer's JWKS)"]
    for kind in KINDS:
        sample = await first_use(gw.resolver, kind.namespace(0))
        if sample.error is not None:
            raise RuntimeError(f"{sample.namespace}: {sample.error}")
        total = sample.seconds["total"] * 1000
        lines.append(f"  {kind.name.partition(':')[0]:<12} {total:8.2f} ms")
    return lines


@dataclass
class Cost:
    """What a phase cost besides time: CPU on each side, and the requests the servers saw."""

    servers: Servers
    counts: Counts
    ours: float
    theirs: float

    @classmethod
    async def start(cls, servers: Servers) -> Cost:
        counts = await servers.counts()
        return cls(servers, counts, time.process_time(), servers.server_cpu_seconds())

    async def lines(self, namespaces: int) -> list[str]:
        ours = (time.process_time() - self.ours) / namespaces * 1000
        theirs = (self.servers.server_cpu_seconds() - self.theirs) / namespaces * 1000
        delta = counts_delta(self.counts, await self.servers.counts())
        servers = f", servers {theirs:.2f} ms" if self.servers.separate else " (servers included)"
        return [
            f"   CPU per namespace: benchmark process {ours:.2f} ms{servers}",
            f"   servers answered per namespace: {per_namespace(delta, namespaces)}",
        ]


async def one_at_a_time(
    resolver: NamespaceResolver, servers: Servers, indices: range, title: str
) -> list[Sample]:
    print(f"\n{title} ({len(indices)} per kind, one at a time)")
    print(HEADER)
    everything: list[Sample] = []
    for kind in KINDS:
        cost = await Cost.start(servers)
        async with asyncio.timeout(PHASE_TIMEOUT):
            samples = [await first_use(resolver, kind.namespace(i)) for i in indices]
        print(f" {kind.name}")
        print("\n".join(breakdown(samples) + errors(samples) + await cost.lines(len(indices))))
        everything += samples
    return everything


async def at_once(gw: Gateway, servers: Servers, rounds: Sequence[range]) -> list[Sample]:
    width = len(rounds[0])
    rounds_per_kind = f"{len(rounds)} round{'s' if len(rounds) > 1 else ''} per kind"
    print(f"\ncold namespaces, {width} at once ({rounds_per_kind})")
    everything: list[Sample] = []
    for kind in KINDS:
        cost = await Cost.start(servers)
        samples: list[Sample] = []
        walls: list[float] = []
        for indices in rounds:
            started = time.perf_counter()
            async with asyncio.timeout(PHASE_TIMEOUT):
                batch = [first_use(gw.resolver, kind.namespace(i)) for i in indices]
                samples += await asyncio.gather(*batch)
            walls.append(time.perf_counter() - started)
        rates = ", ".join(f"{width / w:.0f}" for w in walls)
        round_ms = ", ".join(f"{w * 1000:.0f}" for w in walls)
        print(f" {kind.name}")
        print(f"   rounds took {round_ms} ms: {rates} namespaces/s")
        print(HEADER)
        lines = breakdown(samples) + errors(samples) + await cost.lines(len(samples))
        print("\n".join(lines))
        everything += samples
    return everything


async def re_resolution(gw: Gateway, servers: Servers, indices: range) -> list[Sample]:
    # Another resolver on the same token cache holds no resolution: as if every one expired.
    resolver = gw.fresh_resolver()
    try:
        title = "expired resolution, token still cached"
        return await one_at_a_time(resolver, servers, indices, title)
    finally:
        await resolver.aclose()


# --- warm lookups ---------------------------------------------------------------------------

Token = Callable[[], Awaitable[str]]


async def loop_token(token: Token, ops: int) -> float:
    started = time.perf_counter()
    for _ in range(ops):
        await token()
    return time.perf_counter() - started


async def loop_resolve(resolver: NamespaceResolver, namespace: str, ops: int) -> float:
    started = time.perf_counter()
    for _ in range(ops):
        await resolver.resolve(namespace)
    return time.perf_counter() - started


async def loop_request_path(resolver: NamespaceResolver, namespace: str, ops: int) -> float:
    """What a warm request does before calling Databricks: resolve, then ask for a token."""
    started = time.perf_counter()
    for _ in range(ops):
        await (await resolver.resolve(namespace)).credential.token()
    return time.perf_counter() - started


async def _noop() -> str:
    return ""


async def interleaved(tokens: Sequence[Token], tasks: int, per_task: int) -> float:
    """``tasks`` tasks, each yielding to the others after every lookup, as handlers do."""

    async def worker(token: Token) -> None:
        for _ in range(per_task):
            await token()
            await asyncio.sleep(0)

    started = time.perf_counter()
    await asyncio.gather(*(worker(tokens[i % len(tokens)]) for i in range(tasks)))
    return time.perf_counter() - started


def warm_row(label: str, tasks: int, ops: int, runs: Sequence[float]) -> str:
    per_op = sorted(r / ops * 1e9 for r in runs)
    median = statistics.median(per_op)
    return (
        f"  {label:<46}{tasks:>6}{ops:>9}{median:>9.0f}{per_op[0]:>8.0f}{per_op[-1]:>8.0f}"
        f"{1e9 / median:>12,.0f}"
    )


WARM_HEADER = (
    f"  {'':<46}{'tasks':>6}{'ops':>9}{'ns/op':>9}{'min':>8}{'max':>8}{'ops/s':>12}"
    "\n  (ns/op: median of the repeats, min and max beside it)"
)


async def repeat(times: int, run: Callable[[], Awaitable[float]]) -> list[float]:
    return [await run() for _ in range(times)]


def synthetic_credential() -> CachedCredential:
    """A credential on a TokenCache without an observer: the same code, minus the metrics."""

    async def fetch() -> AccessToken:
        return AccessToken("bench-token", time.time() + 3600)

    return CachedCredential(
        TokenCache(),
        CacheKey("bench", "oauth-m2m:synthetic", "http://bench"),
        fetch,
        kind="oauth-m2m",
        namespace="bench",
    )


async def warm(
    gw: Gateway, servers: Servers, args: argparse.Namespace, allocation: Allocation
) -> None:
    ops, times = args.warm_ops, args.repeats
    namespaces = [k.namespace(i) for k in KINDS for i in allocation.sequential]
    # Resolved in the last ~seconds, so within the TTL; only these identities serve the loops.
    identities = [await gw.resolver.resolve(ns) for ns in namespaces]
    tokens: list[Token] = [identity.credential.token for identity in identities]
    synthetic = synthetic_credential()
    await synthetic.token()
    before = await servers.counts()

    print("\nwarm token lookup: await credential.token(), token FRESH")
    print(WARM_HEADER)
    with_metrics = await repeat(times, lambda: loop_token(tokens[0], ops))
    print(warm_row("CachedCredential, Metrics observer (app.py)", 1, ops, with_metrics))
    bare = await repeat(times, lambda: loop_token(synthetic.token, ops))
    print(warm_row("CachedCredential, no observer (synthetic)", 1, ops, bare))
    per_task = max(1, ops // args.tasks)
    total = per_task * args.tasks
    spread = await repeat(times, lambda: interleaved(tokens, args.tasks, per_task))
    label = f"{len(tokens)} credentials, Metrics, yield after each"
    print(warm_row(label, args.tasks, total, spread))
    noop = await repeat(times, lambda: interleaved([_noop], args.tasks, per_task))
    print(warm_row("same loop, lookup replaced by a no-op", args.tasks, total, noop))
    lookup = statistics.median(spread) / total * 1e9 - statistics.median(noop) / total * 1e9
    print(f"  {'':<46}=> {lookup:.0f} ns per lookup among {args.tasks} tasks")

    fed, m2m = namespaces[0], namespaces[len(allocation.sequential)]
    print("\nwarm resolve: NamespaceResolver.resolve(ns) within its TTL")
    print(WARM_HEADER)
    for ns in (fed, m2m):
        await gw.resolver.resolve(ns)
        runs = [await loop_resolve(gw.resolver, ns, ops) for _ in range(times)]
        print(warm_row(f"resolve({ns})", 1, ops, runs))
    await gw.resolver.resolve(fed)  # a fresh TTL for the loop, however long the others took
    path = await repeat(times, lambda: loop_request_path(gw.resolver, fed, ops))
    print(warm_row(f"resolve({fed}) then credential.token()", 1, ops, path))

    delta = counts_delta(before, await servers.counts())
    verdict = "none: every lookup was a hit" if not delta else f"UNEXPECTED {delta}"
    print(f"  requests the servers answered during the warm loops: {verdict}")


# --- main -----------------------------------------------------------------------------------


def keep_loopback_off_proxies() -> bool:
    """Exempt loopback from any proxy the environment names; whether there was one.

    Both sessions trust the environment (the Databricks one as gateway.app makes it, the
    kube client's always), and the benchmark's traffic must stay on 127.0.0.1. Without a
    proxy nothing is changed, so aiohttp does on each request exactly what it does in
    production; with one, the NO_PROXY match cuts its per-request lookup short.
    """
    if not urllib.request.getproxies():
        return False
    for name in ("NO_PROXY", "no_proxy"):
        listed = [h for h in os.environ.get(name, "").split(",") if h]
        os.environ[name] = ",".join([*listed, LOOPBACK, "localhost"])
    return True


@dataclass
class CpuWatch:
    """CPU the benchmark, the servers and everything else on the machine used meanwhile.

    The machine is shared: other work on it makes the figures noisy, and this says how much
    there was.
    """

    servers: Servers
    started: float = field(default_factory=time.monotonic)
    machine: float = field(default_factory=machine_busy_seconds)
    ours: float = field(default_factory=time.process_time)
    theirs: float = 0.0

    def __post_init__(self) -> None:
        self.theirs = self.servers.server_cpu_seconds()

    def report(self) -> str:
        wall = time.monotonic() - self.started
        ours = time.process_time() - self.ours
        theirs = self.servers.server_cpu_seconds() - self.theirs
        other = max(0.0, machine_busy_seconds() - self.machine - ours - theirs)
        capacity = wall * (os.cpu_count() or 1)
        note = "" if other < 0.05 * capacity else ": figures are noisy"
        servers = f", servers {theirs:.1f} s" if self.servers.separate else " (servers included)"
        return (
            f"\nwall {wall:.1f} s; CPU: benchmark process {ours:.1f} s{servers}, other "
            f"processes {other:.1f} s of {capacity:.0f} available ({other / capacity:.0%}){note}"
        )


async def bench(servers: Servers, args: argparse.Namespace) -> int:
    allocation = allocate(args)
    watch = CpuWatch(servers)
    async with gateway_side(servers) as gw:
        mode = gw.informer.status.mode
        print(
            f"conditions: servers {servers.where}; informer {mode} (2 selectors, all "
            "namespaces); logs at warning; TokenCache with the app's Metrics observer; "
            f"resolution TTL {gw.settings.identity.resolution_ttl_seconds:g} s; latencies are "
            "wall time seen by the caller"
        )
        print("\n".join(await first_ever(gw)))
        title = "cold namespaces"
        samples = await one_at_a_time(gw.resolver, servers, allocation.sequential, title)
        samples += await at_once(gw, servers, allocation.rounds)
        samples += await re_resolution(gw, servers, allocation.sequential)
        await warm(gw, servers, args, allocation)
    print(watch.report())
    return 1 if any(s.error for s in samples) else 0


async def bench_in_process(args: argparse.Namespace, count: int) -> int:
    async with started_servers(count) as (kube, workspace):
        return await bench(InProcess(kube, workspace), args)


def bench_out_of_process(args: argparse.Namespace, count: int) -> int:
    with child_servers(count) as (conn, pid, kube_url, workspace_url):
        return asyncio.run(bench(ChildProcess(conn, pid, kube_url, workspace_url), args))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=200, help="per kind, one at a time")
    parser.add_argument("--concurrency", type=int, default=100, help="namespaces at once")
    parser.add_argument("--rounds", type=int, default=3, help="concurrent rounds per kind")
    parser.add_argument("--warm-ops", type=int, default=200_000, help="lookups per repeat")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks in the interleaved loop")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each warm loop")
    parser.add_argument("--in-process", action="store_true", help="serve from our own loop")
    args = parser.parse_args()
    for name in ("namespaces", "concurrency", "rounds", "warm_ops", "tasks", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    proxied = keep_loopback_off_proxies()
    logs.configure(level="warning", fmt="console")
    count = 1 + args.namespaces + args.rounds * args.concurrency
    print(machine_line())
    print(
        f"namespaces: {count} per kind (1 warm-up, {args.namespaces} one at a time, "
        f"{args.rounds} x {args.concurrency} at once), each with its own service principal"
    )
    proxies = "set, loopback exempted by NO_PROXY" if proxied else "none"
    print(
        "HTTP: both sessions trust the environment, as gateway.app's and kubernetes-asyncio's "
        f"do; proxy variables: {proxies}"
    )
    if args.in_process:
        return asyncio.run(bench_in_process(args, count))
    return bench_out_of_process(args, count)


if __name__ == "__main__":
    sys.exit(main())
