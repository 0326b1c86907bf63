"""Why ``lakegate serve`` could not start, as one line naming the cause and the fix.

A gateway-wide problem (the configuration file, the Kubernetes connection, the ledger, the
listening port) ends the process with exit code 2 and that one line on stderr; the traceback
is for ``--debug``. A problem in one tenant's policy is not one of these: that tenant is
refused and the gateway starts (``gateway.tenant_refusals``).
"""

from __future__ import annotations

import errno
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import ConfigError, LakegateError, StoreError

EXIT_STARTUP = 2
# What binding the listening socket fails with; any other OSError is not known to be that.
_BIND_ADDRESS = re.compile(r"address \('([^']*)', (\d+)\)")
_LISTEN_ERRORS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES, errno.EPERM})


@dataclass(frozen=True, slots=True)
class Where:
    """What the line may name: the configuration file, the address and the ledger's path
    (empty for a PostgreSQL ledger)."""

    config: str
    host: str = ""
    port: int = 0
    ledger: str = ""
    # How the port is chosen on this command line; other ports by the flag that sets them.
    port_flag: str = "--port (or server.port)"
    other_ports: tuple[tuple[int, str], ...] = ()


def _joined(problems: Sequence[str]) -> str:
    return "; ".join(p.strip().rstrip(".") for p in problems) or "unknown problem"


def config_line(exc: ConfigError, where: Where) -> str:
    """The configuration files or the environment do not validate."""
    count = len(exc.problems)
    return (
        f"lakegate: the configuration is invalid ({count} problem(s)): {_joined(exc.problems)}; "
        f"fix the file or variable named (lakegate check-config --config {where.config} "
        "lists every problem)"
    )


def _kubernetes_line(exc: ConfigError, where: Where) -> str:
    return (
        f"lakegate: no usable Kubernetes configuration: {_joined(exc.problems)}; run in a pod "
        f"with a ServiceAccount, or set kubernetes.mode in {where.config} to kubeconfig "
        "(with kubernetes.kubeconfig), explicit, or off"
    )


def _port_line(exc: OSError, where: Where) -> str:
    # asyncio names the address it could not bind; trust it over what was asked for.
    named = _BIND_ADDRESS.search(str(exc))
    host, port = (named.group(1), int(named.group(2))) if named else (where.host, where.port)
    flag = dict(where.other_ports).get(port, where.port_flag)
    address = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"lakegate: port {port} on {host} is already in use; stop what holds it, or "
            f"choose another port with {flag}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"lakegate: not allowed to listen on {address}: {exc.strerror}; choose a port "
            f"above 1023 with {flag}"
        )
    return (
        f"lakegate: cannot listen on {address}: {exc.strerror or exc}; check the host and "
        f"the port ({flag})"
    )


def _ledger_line(exc: StoreError, where: Where) -> str:
    if not where.ledger:
        # No file: the ledger is PostgreSQL.
        return (
            f"lakegate: cannot open the run ledger: {exc.message}; check that PostgreSQL is up "
            f"and that store.dsn, store.dsn_env or store.dsn_file in {where.config} names it"
        )
    return (
        f"lakegate: cannot open the run ledger: {exc.message}; point store.sqlite_path "
        f"({where.ledger}) at a lakegate ledger or a new file the gateway may write (in "
        f"{where.config} or LAKEGATE_STORE__SQLITE_PATH)"
    )


def describe(exc: BaseException, where: Where) -> str | None:
    """The one line for a start-up failure lakegate knows, None for anything else (a bug,
    whose traceback is worth more than a sentence)."""
    if isinstance(exc, ConfigError):
        if exc.problems and all(p.startswith("kubernetes") for p in exc.problems):
            return _kubernetes_line(exc, where)
        return (
            f"lakegate: cannot start: {_joined(exc.problems)}; fix the setting named in "
            f"{where.config} (lakegate check-config --config {where.config} checks it)"
        )
    if isinstance(exc, StoreError):
        return _ledger_line(exc, where)
    if isinstance(exc, OSError) and exc.errno in _LISTEN_ERRORS:
        return _port_line(exc, where)
    if isinstance(exc, LakegateError):
        return f"lakegate: cannot start: {exc.message}"
    return None
