"""Logging configured as ``lakegate serve`` configures it, into a buffer, for one block."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

import structlog

from gateway import logs


@contextlib.contextmanager
def configured_logs(fmt: logs.LogFormat = "json", level: str = "info") -> Iterator[io.StringIO]:
    """structlog and stdlib logging as in production, writing to the buffer yielded; both
    are put back as they were afterwards."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    # configure() binds its renderers to sys.stderr as it is when called.
    with contextlib.redirect_stderr(stream):
        logs.configure(level=level, fmt=fmt)
    # The only departure from production: a logger cached on first use would keep writing to
    # this buffer in every later test of the session.
    structlog.configure(cache_logger_on_first_use=False)
    try:
        yield stream
    finally:
        structlog.reset_defaults()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
