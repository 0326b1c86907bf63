"""The process's one Kubernetes ``ApiClient``: built in-cluster, from a kubeconfig, or by hand.

Loading reads files (the projected token, the CA, a kubeconfig), so every load runs in a
worker thread; only the ``ApiClient`` itself is built on the event loop, because its aiohttp
session binds to the running loop. Two quirks of kubernetes-asyncio are handled here:

* the in-cluster loader puts the token file's content into the header unstripped, and a
  trailing newline makes aiohttp refuse the header; its reload hook also reads the file on the
  event loop. We replace that hook with ``TokenFile``, which re-reads off the loop once the token
  is older than a minute (kubelet rotates projected tokens well before they expire) and strips;
* ``load_kube_config`` without ``client_configuration`` rewrites the global default
  ``Configuration``; we always pass our own, so nothing global is touched.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.config.config_exception import ConfigException
from kubernetes_asyncio.config.incluster_config import InClusterConfigLoader

from gateway.errors import ConfigError
from gateway.logs import get_logger
from gateway.secrets_registry import remember
from gateway.settings import KubernetesSettings

log = get_logger(__name__)

ClientMode = Literal["in-cluster", "kubeconfig", "explicit"]

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
IN_CLUSTER_TOKEN_FILE = f"{SERVICE_ACCOUNT_DIR}/token"
IN_CLUSTER_CA_FILE = f"{SERVICE_ACCOUNT_DIR}/ca.crt"
DEFAULT_KUBECONFIG = "~/.kube/config"
_SECTION = "kubernetes"


@dataclass(frozen=True, slots=True)
class KubeConfig:
    """How to reach the Kubernetes API; the future ``kubernetes:`` settings section.

    ``in-cluster``: the pod's ServiceAccount (``token_file``/``ca_file`` override the standard
    paths, ``host`` the service address from the environment). ``kubeconfig``: a kubeconfig
    file and context, for development; its token is read once, as the client library does.
    ``explicit``: ``host`` plus ``token`` or ``token_file`` (re-read like a projected token).
    """

    mode: ClientMode = "in-cluster"
    host: str | None = None
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    ca_file: str | None = None
    verify_ssl: bool = True
    kubeconfig: str | None = None
    context: str | None = None
    # (connect, read) seconds: a single number would be aiohttp's total and cut watches short.
    request_timeout: tuple[float, float] = (5.0, 30.0)
    token_reload_seconds: float = 60.0
    user_agent: str = "lakegate"

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_settings(cls, settings: KubernetesSettings) -> KubeConfig:
        """The connection the ``kubernetes`` section asks for (any mode but ``off``)."""
        timeout = (min(5.0, settings.request_timeout_seconds), settings.request_timeout_seconds)
        if settings.mode == "kubeconfig":
            return cls(
                mode="kubeconfig",
                kubeconfig=settings.kubeconfig,
                context=settings.context,
                request_timeout=timeout,
            )
        explicit = settings.mode == "explicit"
        return cls(
            mode="explicit" if explicit else "in-cluster",
            host=settings.host if explicit else None,
            token_file=settings.token_file,
            request_timeout=timeout,
        )

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.mode not in ("in-cluster", "kubeconfig", "explicit"):
            out.append(f"{_SECTION}: mode: {self.mode!r} is not in-cluster, kubeconfig or explicit")
        if self.mode == "explicit":
            if not self.host:
                out.append(f"{_SECTION}: host: required in explicit mode")
            if (self.token is None) == (self.token_file is None):
                out.append(f"{_SECTION}: token: give exactly one of token or token_file")
        elif self.token is not None:
            out.append(f"{_SECTION}: token: only used in explicit mode")
        if self.mode != "kubeconfig" and (self.kubeconfig or self.context):
            out.append(f"{_SECTION}: kubeconfig: only used in kubeconfig mode")
        if self.host and not self.host.startswith(("https://", "http://")):
            out.append(f"{_SECTION}: host: {self.host!r} is not an http(s) URL")
        connect, read = self.request_timeout
        if connect <= 0 or read <= 0:
            out.append(f"{_SECTION}: request_timeout: both seconds must be positive")
        if self.token_reload_seconds <= 0:
            out.append(f"{_SECTION}: token_reload_seconds: must be positive")
        return out


class TokenFile:
    """A bearer token file, stripped, re-read off the event loop once ``max_age`` has passed.

    Installed as the configuration's ``refresh_api_key_hook``, which the client awaits before
    every request. A failed re-read keeps the previous token (kubelet swaps the file atomically,
    so a failure is rare and passing) and is retried after another ``max_age``.
    """

    def __init__(
        self, path: str, *, max_age: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self._max_age = max_age
        self._clock = clock
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def read(self) -> str:
        """Read the token now; an empty or missing file is a configuration error."""
        try:
            token = await asyncio.to_thread(_read_stripped, self.path)
        except OSError as exc:
            raise ConfigError([f"{_SECTION}: token_file: cannot read {self.path}: {exc}"]) from exc
        if not token:
            raise ConfigError([f"{_SECTION}: token_file: {self.path} is empty"])
        # The gateway's own Kubernetes credential: no echo (a Status, a log) may quote it.
        remember(token)
        self._read_at = self._clock()
        return token

    def is_stale(self) -> bool:
        return self._read_at is None or self._clock() - self._read_at >= self._max_age

    async def __call__(self, configuration: Any) -> None:
        if not self.is_stale():
            return
        async with self._lock:
            # Requests that queued on the lock find the token fresh and go on.
            if not self.is_stale():
                return
            try:
                token = await self.read()
            except ConfigError as exc:
                self._read_at = self._clock()
                log.warning("kube_token_reload_failed", path=self.path, error=exc.message)
                return
            configuration.api_key["BearerToken"] = f"Bearer {token}"


def _read_stripped(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip()


async def load_configuration(
    config: KubeConfig, *, environ: Mapping[str, str] | None = None
) -> Any:
    """A fresh client ``Configuration`` for ``config``; files are read in a worker thread."""
    if config.mode == "in-cluster":
        cfg = await _in_cluster(config, environ)
    elif config.mode == "kubeconfig":
        cfg = await _from_kubeconfig(config)
    else:
        cfg = Configuration(host=config.host)
        if config.token is not None:
            cfg.api_key["BearerToken"] = f"Bearer {config.token.strip()}"
        else:
            assert config.token_file is not None
            await _install_token_file(cfg, config.token_file, config)
    if config.ca_file and config.mode != "in-cluster":
        cfg.ssl_ca_cert = config.ca_file
    if not config.verify_ssl:
        cfg.verify_ssl = False
    if cfg.host.startswith("http://"):
        # Plain http needs no CA, and the client would otherwise parse one it never uses.
        cfg.ssl_ca_cert = None
    # Whatever the mode, the bearer token is the gateway's own credential (a re-read token
    # file registers itself in TokenFile.read).
    remember(str(cfg.api_key.get("BearerToken", "")).removeprefix("Bearer ").strip() or None)
    return cfg


async def _in_cluster(config: KubeConfig, environ: Mapping[str, str] | None) -> Any:
    cfg = Configuration()
    token_file = config.token_file or IN_CLUSTER_TOKEN_FILE
    loader = InClusterConfigLoader(
        token_filename=token_file,
        cert_filename=config.ca_file or IN_CLUSTER_CA_FILE,
        # Its own hook reads the file on the event loop and does not strip; ours replaces it.
        try_refresh_token=False,
        environ=dict(os.environ if environ is None else environ),
    )
    try:
        await asyncio.to_thread(loader.load_and_set, cfg)
    except ConfigException as exc:
        raise ConfigError([f"{_SECTION}: mode: in-cluster configuration unusable: {exc}"]) from exc
    if config.host:
        cfg.host = config.host
    await _install_token_file(cfg, token_file, config)
    return cfg


async def _install_token_file(cfg: Any, path: str, config: KubeConfig) -> None:
    token_file = TokenFile(path, max_age=config.token_reload_seconds)
    cfg.api_key["BearerToken"] = f"Bearer {await token_file.read()}"
    cfg.api_key_prefix.pop("BearerToken", None)
    cfg.refresh_api_key_hook = token_file


async def _from_kubeconfig(config: KubeConfig) -> Any:
    cfg = Configuration()
    path = await asyncio.to_thread(os.path.expanduser, config.kubeconfig or DEFAULT_KUBECONFIG)
    # The loader is async but reads (and may write temporary cert files) synchronously, so it
    # runs on a private event loop in a worker thread. It is handed our own Configuration and
    # never sets the global default; persist_config=False keeps it from rewriting the file.
    loading = kube_config.load_kube_config(
        config_file=path, context=config.context, client_configuration=cfg, persist_config=False
    )
    try:
        await asyncio.to_thread(asyncio.run, loading)
    except (ConfigException, OSError, ValueError, KeyError) as exc:
        raise ConfigError([f"{_SECTION}: kubeconfig: cannot load {path}: {exc}"]) from exc
    return cfg


async def open_api_client(
    config: KubeConfig, *, environ: Mapping[str, str] | None = None
) -> ApiClient:
    """The process's ``ApiClient`` for ``config``; the caller owns it and must close it."""
    cfg = await load_configuration(config, environ=environ)
    try:
        # The client builds its SSL context (reading the CA) in its constructor; this is the one
        # read on the loop, once per process, as the aiohttp session must be made here.
        api = ApiClient(cfg)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError([f"{_SECTION}: ca_file: cannot use {cfg.ssl_ca_cert}: {exc}"]) from exc
    api.user_agent = config.user_agent
    if not urllib.request.getproxies():
        # kubernetes-asyncio makes its session with trust_env=True, so aiohttp reads ~/.netrc
        # and the proxy variables in worker threads on every request; with no proxy set there
        # is nothing to find. (A private attribute: tests/kube pin it.)
        api.rest_client.pool_manager._trust_env = False
    log.info("kube_client_opened", mode=config.mode, host=cfg.host)
    return api
