"""Host names that resolve to loopback inside a driver's process: the harness's /etc/hosts.

Some clients ignore HTTP_PROXY: Airflow's async hook, which every deferrable Databricks
operator's trigger polls with, opens its aiohttp session without ``trust_env``. So the proxy
that routes a per-namespace host name to lakegate for the other clients cannot route theirs.
Here the driver process's own name lookup maps every name under one suffix
(``LAKEGATE_LOOPBACK_SUFFIX``, e.g. ``.lakegate.example``) to 127.0.0.1, as DNS or a
per-namespace Service would in a deployment. The client still connects by that name, so its
Host header is the one a deployment's would be. No other name resolves differently, nothing
leaves loopback, and the client's own code is not touched. Standard library only.
"""

from __future__ import annotations

import os
import socket
from typing import Any

VARIABLE = "LAKEGATE_LOOPBACK_SUFFIX"
LOOPBACK = "127.0.0.1"


def install() -> str | None:
    """Route the names under ``$LAKEGATE_LOOPBACK_SUFFIX`` to loopback; the suffix, or None
    when the variable is unset (then nothing changes)."""
    suffix = os.environ.get(VARIABLE, "").strip().lower()
    if not suffix:
        return None
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and name.lower().rstrip(".").endswith(suffix):
            host = LOOPBACK
        return real(host, port, *args, **kwargs)

    # asyncio's resolver (aiohttp's default without aiodns) and urllib3 both look
    # socket.getaddrinfo up at each call, so one replacement serves sync and async clients.
    socket.getaddrinfo = getaddrinfo
    return suffix
