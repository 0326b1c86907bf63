"""Which namespace the Host a client called names, for clients that cannot send a header.

An unchanged Databricks client (the SDK, Airflow's connection, the CLI) sends no
``X-Lakegate-Namespace``; the operator can give each namespace a host name resolving to lakegate
(a DNS name such as ``team-a.lakegate.example``, or a per-namespace Service) and set
``callers.namespace_host_pattern``. The Host only chooses: the caller must still be authorized
for the namespace it names, so a forged Host reaches nothing its credential could not.
"""

from __future__ import annotations

import re

from gateway.settings import compile_host_pattern

__all__ = ["HostNamespaces"]


class HostNamespaces:
    """``namespace_host_pattern`` compiled once; ``namespace(host)`` reads a Host header."""

    def __init__(self, pattern: str | None) -> None:
        self._regex: re.Pattern[str] | None = compile_host_pattern(pattern) if pattern else None

    def namespace(self, host: str | None) -> str | None:
        """The namespace ``host`` (a Host header: name, optional port) names, or None."""
        if self._regex is None or not host:
            return None
        name = _without_port(host.strip().lower()).rstrip(".")
        match = self._regex.match(name)
        return match.group("namespace") if match else None


def _without_port(host: str) -> str:
    if host.startswith("["):
        # An IPv6 literal never names a namespace; keep it whole so it matches nothing.
        return host
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host
