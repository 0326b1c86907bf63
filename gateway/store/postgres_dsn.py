"""Where the PostgreSQL ledger's DSN comes from, read once at start-up and held as a secret.

The DSN names a password, so whoever reads it registers it (whole, and its password alone,
as written and decoded) with ``gateway.secrets_registry`` before anything can log it: an
asyncpg error that quotes the DSN, a start-up line, a traceback. Reading a file blocks: call
``read_dsn`` in a thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from gateway import secrets_registry
from gateway.errors import ConfigError

_SCHEMES = frozenset({"postgresql", "postgres"})


@dataclass(frozen=True, slots=True)
class DsnSource:
    """Exactly one of the three is set (the settings check that)."""

    dsn: str | None = None
    dsn_env: str | None = None
    dsn_file: str | None = None

    def where(self) -> str:
        if self.dsn_env is not None:
            return f"store.dsn_env (environment variable {self.dsn_env})"
        if self.dsn_file is not None:
            return f"store.dsn_file ({self.dsn_file})"
        return "store.dsn"


def read_dsn(source: DsnSource, environ: Mapping[str, str]) -> str:
    """The DSN, checked and registered as a secret; ConfigError naming the source otherwise."""
    problem, dsn = _read(source, environ)
    if problem is not None:
        raise ConfigError([f"{source.where()}: {problem}"])
    assert dsn is not None
    return dsn


def dsn_problem(source: DsnSource, environ: Mapping[str, str]) -> str | None:
    """What is wrong with the DSN source, as one line naming it; None when it is usable."""
    problem, _ = _read(source, environ)
    return None if problem is None else f"{source.where()}: {problem}"


def _read(source: DsnSource, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    if source.dsn_env is not None:
        raw = environ.get(source.dsn_env)
        if raw is None or not raw.strip():
            return "the variable is not set (set it to a postgresql:// URL)", None
    elif source.dsn_file is not None:
        try:
            with open(source.dsn_file, encoding="utf-8") as handle:
                raw = handle.read()
        except OSError as exc:
            return f"cannot read it: {exc.strerror or exc} (mount the Secret there)", None
        if not raw.strip():
            return "the file is empty (it should hold a postgresql:// URL)", None
    else:
        raw = source.dsn or ""
    dsn = raw.strip()
    _remember(dsn)
    try:
        parts = urlsplit(dsn)
        parts.port  # noqa: B018 - a bad port raises here, not at the first connection
    except ValueError:
        return "not a DSN lakegate can read (postgresql://user[:password]@host[:port]/db)", None
    if parts.scheme not in _SCHEMES or not parts.hostname:
        return (
            "not a postgresql:// URL with a host (postgresql://user[:password]@host[:port]/db; "
            "key=value DSNs are not supported)"
        ), None
    return None, dsn


def _remember(dsn: str) -> None:
    secrets_registry.remember(dsn)
    try:
        password = urlsplit(dsn).password
    except ValueError:
        return
    if password:
        secrets_registry.remember(password)
        secrets_registry.remember(unquote(password))
