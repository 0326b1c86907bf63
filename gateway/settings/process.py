"""How the gateway process itself runs: its server, its ledger, its logs and its poller."""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator

from gateway.settings.base import Frozen


def default_replica_id() -> str:
    """hostname-pid-random: unique among replicas, and new on each start of the process."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def event_loop_problem(
    name: str, find_spec: Callable[[str], Any] = importlib.util.find_spec
) -> str | None:
    """Why the event loop ``name`` cannot run here, or None."""
    if name == "uvloop" and find_spec("uvloop") is None:
        return (
            "uvloop is not installed; install it (pip install 'lakegate[uvloop]') or set "
            "event_loop: asyncio"
        )
    return None


class ServerSettings(Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # A listener of its own serving only /metrics, unauthenticated and plain HTTP, for
    # Prometheus (behind a NetworkPolicy). On the main listener /metrics needs a credential.
    metrics_host: str | None = None  # default: host
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # PEM files; both or neither. With them the main listener speaks only TLS.
    tls_cert_file: str | None = Field(default=None, min_length=1)
    tls_key_file: str | None = Field(default=None, min_length=1)
    # Peers (CIDRs) whose Forwarded / X-Forwarded-Host / X-Forwarded-Proto headers say which
    # scheme and Host a client called: the TLS-terminating proxy or ingress in front. From
    # any other peer these headers are ignored, so a client cannot claim another Host.
    trusted_proxies: tuple[IPvAnyNetwork, ...] = ()
    # The name this process claims background work under (``gateway.store.leases``): each
    # replica sharing a ledger needs its own, so an explicit one must not be reused.
    replica_id: str = Field(
        default_factory=default_replica_id, min_length=1, max_length=200, pattern=r"^\S+$"
    )
    # uvloop: libuv's event loop, for less CPU per request (bench_gateway.py --event-loop
    # uvloop); opt-in, and refused at load when missing (pip install 'lakegate[uvloop]').
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"

    @field_validator("event_loop")
    @classmethod
    def _installed(cls, value: str) -> str:
        problem = event_loop_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _listeners(self) -> ServerSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("give both tls_cert_file and tls_key_file, or neither")
        if self.metrics_host is not None and self.metrics_port is None:
            raise ValueError("metrics_host needs metrics_port (the metrics listener's port)")
        same_host = (self.metrics_host or self.host) == self.host
        if same_host and self.port != 0 and self.metrics_port == self.port:
            raise ValueError("metrics_port must differ from port (a listener of its own)")
        return self

    @property
    def metrics_listener(self) -> tuple[str, int] | None:
        """Where the metrics listener binds, or None when there is none."""
        if self.metrics_port is None:
            return None
        return self.metrics_host or self.host, self.metrics_port


# store.lease_seconds unless set; also what a ``Claims`` built without settings (tests) uses.
DEFAULT_LEASE_SECONDS = 20.0


class StoreSettings(Frozen):
    """The run ledger: embedded SQLite (one replica) or a shared PostgreSQL (several).

    PostgreSQL's DSN holds a password, so it comes from exactly one of: ``dsn`` (inline, a
    secret), ``dsn_env`` (the name of an environment variable) or ``dsn_file`` (a file, such
    as a mounted Kubernetes Secret). Its schema is the DSN's ``search_path`` if it names one.
    """

    backend: Literal["sqlite", "postgres"] = "sqlite"
    sqlite_path: str = "lakegate.db"
    dsn: SecretStr | None = None
    dsn_env: str | None = Field(default=None, min_length=1)
    dsn_file: str | None = Field(default=None, min_length=1)
    pool_min_size: int = Field(default=1, ge=0, le=100)
    pool_max_size: int = Field(default=10, ge=1, le=100)
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    # How long a replica's claim on a run (poller, submission retrier, admission queue) lasts
    # unrenewed: how long a dead replica's runs wait for another. Renewed every third of it, so
    # under a second would mean a renewal write several times a second per busy replica; over
    # ten minutes, runs of a lost pod standing still that long.
    lease_seconds: float = Field(default=DEFAULT_LEASE_SECONDS, ge=1, le=600)

    @field_validator("backend", mode="before")
    @classmethod
    def _known(cls, value: object) -> object:
        # One backend, two spellings: libpq's scheme says postgresql, people say postgres.
        if isinstance(value, str) and value.strip().lower() in ("postgresql", "postgres"):
            return "postgres"
        return value

    @model_validator(mode="after")
    def _dsn_source(self) -> StoreSettings:
        given = [
            name
            for name, value in (
                ("dsn", self.dsn),
                ("dsn_env", self.dsn_env),
                ("dsn_file", self.dsn_file),
            )
            if value is not None
        ]
        if self.backend == "sqlite":
            if given:
                raise ValueError(
                    f"{', '.join(given)} only applies to backend postgres (the sqlite ledger "
                    "is store.sqlite_path); remove it, or set backend: postgres"
                )
        elif len(given) != 1:
            raise ValueError(
                "backend postgres needs exactly one of dsn, dsn_env (an environment variable's "
                "name) or dsn_file (a file such as a mounted Secret), "
                + (f"not {' and '.join(given)}" if given else "and none is set")
            )
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("pool_min_size must not be above pool_max_size")
        return self


class LoggingSettings(Frozen):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class PollerSettings(Frozen):
    min_interval_seconds: float = Field(default=5.0, gt=0)
    max_interval_seconds: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=200, ge=1)
    # How long a submission waits for Databricks before the caller gets 202 SUBMITTING and the
    # poller carries on with the same idempotency token.
    inline_submit_seconds: float = Field(default=10.0, gt=0, le=120)
    submit_deadline_seconds: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> PollerSettings:
        if self.max_interval_seconds < self.min_interval_seconds:
            raise ValueError("max_interval_seconds must not be below min_interval_seconds")
        return self
