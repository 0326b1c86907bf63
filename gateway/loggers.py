"""The logger objects behind ``gateway.logs``: a module's logger, the bound logger class the
configuration installs, and ``bound`` for context. Each is a leaner path through structlog
than its own, for the events every request emits; ``gateway.logs`` configures and redacts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

import structlog


def _interpolated(event: str, args: tuple[Any, ...]) -> str:
    # As structlog's filtering logger does: one mapping argument is for %(name)s.
    if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
        return event % args[0]
    return event % args


def _level_method(name: str) -> Any:
    def meth(self: Any, event: str, *args: Any, **kw: Any) -> Any:
        return self._emit(name, _interpolated(event, args) if args else event, kw)

    meth.__name__ = name
    return meth


def lean_filtering_logger(min_level: int) -> type[Any]:
    """structlog's filtering bound logger for ``min_level``, whose enabled methods build the
    event dict from their own keywords (structlog copies them twice and the context once) and
    run the chain in one frame."""
    base: type[Any] = structlog.make_filtering_bound_logger(min_level)
    methods: dict[str, Any] = {"_emit": _emit}
    for level, name in _LEVELS.items():
        if level >= min_level:
            methods[name] = _level_method(name)
    for alias, name in (("warn", "warning"), ("fatal", "critical"), ("msg", "info")):
        if name in methods:
            methods[alias] = methods[name]
    return type(f"Lean{base.__name__}", (base,), methods)


_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}


def _emit(self: Any, method_name: str, event: str, event_kw: dict[str, Any]) -> Any:
    # What BoundLoggerBase._proxy_to_logger does, on the caller's own fresh keyword dict.
    context = self._context
    event_dict: Any = {**context, **event_kw} if context else event_kw
    event_dict["event"] = event
    logger = self._logger
    try:
        for proc in self._processors:
            event_dict = proc(logger, method_name, event_dict)
    except structlog.DropEvent:
        return None
    if isinstance(event_dict, str | bytes | bytearray):
        return getattr(logger, method_name)(event_dict)
    if isinstance(event_dict, tuple):
        args, kw = event_dict
        return getattr(logger, method_name)(*args, **kw)
    if isinstance(event_dict, dict):
        return getattr(logger, method_name)(**event_dict)
    raise ValueError("The last processor returned no str, bytes, tuple or dict.")


class _Logger:
    """A module's logger, ready before ``configure`` runs. structlog's lazy proxy finds each
    method by failing an attribute lookup first (an AttributeError per event, a fifth of its
    cost); the level methods (set below) go straight to the logger the configuration binds."""

    __slots__ = ("_proxy",)

    def __init__(self, name: str | None) -> None:
        self._proxy: Any = structlog.get_logger(name)

    def __getattr__(self, name: str) -> Any:
        # The rest (bind, critical, the async methods) as structlog's proxy has them; a copy
        # being built has no _proxy yet, which must not send this looking for one forever.
        if name == "_proxy":
            raise AttributeError(name)
        return getattr(self._proxy, name)


def _forwarding(name: str) -> Any:
    def method(self: _Logger, event: str, *args: Any, **kw: Any) -> Any:
        return getattr(self._proxy.bind(), name)(event, *args, **kw)

    method.__name__ = name
    return method


for _name in ("debug", "info", "warning", "error", "exception"):
    setattr(_Logger, _name, _forwarding(_name))


def get_logger(name: str | None = None) -> Any:
    return _Logger(name)


class _Bound:
    # structlog's bound_contextvars reads the whole context first, to put back what it
    # replaces; resetting the tokens its bind returned puts back the same, at half the cost.
    __slots__ = ("_context", "_tokens")

    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context
        self._tokens: Mapping[str, Any] = {}

    def __enter__(self) -> None:
        self._tokens = structlog.contextvars.bind_contextvars(**self._context)

    def __exit__(self, *_exc: object) -> None:
        structlog.contextvars.reset_contextvars(**self._tokens)


def bound(**context: Any) -> AbstractContextManager[None]:
    """Bind context (request_id, namespace, run_id) for the duration of a block; what the
    keys held before comes back after it, nested blocks included."""
    return _Bound(context)
