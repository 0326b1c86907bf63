"""``lakegate serve``: the gateway on its listener (over TLS when configured), and the metrics
listener beside it when ``server.metrics_port`` is set."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Callable

from gateway import __version__, logs, serving
from gateway.api.ops import metrics_app
from gateway.app import Overrides, create_app
from gateway.appkeys import METRICS
from gateway.errors import ConfigError
from gateway.serving import Listener, serve, tls_context
from gateway.settings import ServerSettings, Settings


def server_tls(server: ServerSettings) -> ssl.SSLContext | None:
    """The main listener's TLS context, loaded now so a bad file stops the start, not a
    handshake; None when TLS is not configured."""
    if server.tls_cert_file is None or server.tls_key_file is None:
        return None
    return tls_context(server.tls_cert_file, server.tls_key_file)


def run(
    settings: Settings,
    *,
    host: str | None,
    port: int | None,
    source: Callable[[], Settings],
    debug: bool = False,
) -> int:
    try:
        context = server_tls(settings.server)
    except ConfigError as exc:
        print("cannot start: the TLS files do not load:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    logs.configure(level="debug" if debug else settings.logging.level, fmt=settings.logging.format)
    host = host or settings.server.host
    port = port if port is not None else settings.server.port
    scheme = "https" if context is not None else "http"
    lines = [f"lakegate {__version__} serving on {scheme}://{host}:{port}"]
    # SIGHUP re-reads the configuration and applies what can change live (callers).
    app = create_app(settings, Overrides(settings_source=source))
    also: list[Listener] = []
    where = settings.server.metrics_listener
    if where is not None:
        also.append(Listener(metrics_app(app[METRICS]), *where))
        lines.append(f"metrics on http://{where[0]}:{where[1]}/metrics")
    # SIGTERM and SIGINT shut down gracefully: in-flight requests finish, then every
    # cleanup_ctx closes what it opened. Unparsable requests are answered without an echo.
    serving.run(
        serve(
            Listener(app, host, port, ssl_context=context),
            also=also,
            shutdown_timeout=settings.server.shutdown_grace_seconds,
            started=lambda: print("\n".join(lines), flush=True),
        ),
        event_loop=settings.server.event_loop,
    )
    return 0
