"""structlog set-up, context binding and the redaction that keeps credentials out of logs.

Redaction runs over every value of every event once exceptions and stacks are text (only the
level and the timestamp, the processors' own words, are added after it), so a token that
reaches a log through an exception message, a URL or a nested dict is still caught.
It works on two levels: keys whose name says "secret" lose their value whatever it looks like,
and string values are scrubbed of the shapes credentials have on the wire (bearer and basic
headers, JWTs, Databricks PATs and OAuth secrets, form fields such as ``client_secret=``).
Every event costs a few µs on the request path (tests/bench/bench_logging.py): one processor,
``prepare_event``, does the whole chain, and texts found clean are not scanned again until the
secret registry learns a value.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import orjson
import structlog

from gateway import secrets_registry

# What every module imports from here; the logger objects themselves live in gateway.loggers.
from gateway.loggers import bound as bound
from gateway.loggers import get_logger as get_logger
from gateway.loggers import lean_filtering_logger

REDACTED = secrets_registry.MASK
# Upstream error text (token endpoint, Jobs API, Kubernetes) is quoted at most this long.
UPSTREAM_MAX_CHARS = 300

LogFormat = Literal["auto", "json", "console"]

# fmt: off
_SECRET_KEYS = frozenset({
    "authorization", "proxy-authorization", "token", "access_token", "refresh_token",
    "id_token", "subject_token", "actor_token", "client_secret", "client_assertion", "secret",
    "password", "api_key", "apikey", "bearer", "jwt", "private_key", "signing_secret",
    "webhook_secret", "x-databricks-azure-sp-management-token",
})
# fmt: on

_VALUE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization header values, in any case, with any scheme we send.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 " + REDACTED),
    # "token <value>" only when the value looks like one (has a digit or a symbol), so that
    # prose such as "token endpoint refused" stays readable.
    (
        re.compile(r"(?i)\b(token)\s+(?=[A-Za-z]*[0-9._~+/=\-])[A-Za-z0-9._~+/=\-]{8,}"),
        r"\1 " + REDACTED,
    ),
    # Compact JWS/JWT: three base64url segments, the first of which is a JSON header.
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"), REDACTED),
    # Databricks personal access tokens (dapi + hex, optionally -N) and OAuth secrets (dose...).
    (re.compile(r"\bdapi[0-9a-f]{16,}(?:-\d+)?\b"), REDACTED),
    (re.compile(r"\bdose[0-9a-zA-Z]{16,}\b"), REDACTED),
    # Form or query fields that carry credentials.
    (
        re.compile(
            r"(?i)\b(client_secret|client_assertion|subject_token|access_token|token|password)"
            r"=[^&\s\"']+"
        ),
        r"\1=" + REDACTED,
    ),
)


# Every pattern above needs one of these words, in any case: text without any (nearly every
# log value: event names, routes, ids, states) skips the six substitutions, which cost ten
# times this one search.
_MAYBE_CREDENTIAL = re.compile(r"(?i)bearer|basic|token|eyj|dapi|dose|client_|password")

# Texts found clean are remembered (in the registry's ``clean``, which forgets them all when
# it learns a secret) up to these bounds; past the count they are all dropped, which costs
# less than keeping an order. Request ids are unique: a bound keeps them from piling up.
_CLEAN_MAX_TEXTS = 4096
_CLEAN_MAX_CHARS = 512


def _maybe_credential(text: str) -> bool:
    """Whether ``_MAYBE_CREDENTIAL`` could match ``text``. Case-insensitive alternation is
    slow in ``re`` (5 µs for a route); lowered ASCII text answers the same with substring
    tests. Beyond ASCII, case folding (U+017F matches "s", U+212A "k") needs the search."""
    if not text.isascii():
        return _MAYBE_CREDENTIAL.search(text) is not None
    low = text.lower()
    return (
        "token" in low
        or "bearer" in low
        or "basic" in low
        or "eyj" in low
        or "dapi" in low
        or "dose" in low
        or "client_" in low
        or "password" in low
    )


def redact_text(text: str) -> str:
    """Return ``text`` with every held secret and every credential-shaped substring replaced."""
    # Read before scrubbing: a secret learnt meanwhile replaces the set, not what it holds.
    clean = secrets_registry.REGISTRY.clean
    if text in clean:
        return text
    redacted = secrets_registry.scrub(text)
    if _maybe_credential(redacted):
        for pattern, replacement in _VALUE_PATTERNS:
            redacted = pattern.sub(replacement, redacted)
    # Only texts that held nothing are kept: the set never holds a credential.
    if redacted == text and len(text) <= _CLEAN_MAX_CHARS:
        if len(clean) >= _CLEAN_MAX_TEXTS:
            clean.clear()
        clean.add(text)
    return redacted


def upstream_text(text: str, limit: int = UPSTREAM_MAX_CHARS) -> str:
    """Text an upstream sent (an error body or message), fit to quote: one line, redacted,
    at most ``limit`` characters. Redaction comes first so a cut cannot split a secret into a
    piece that no longer matches."""
    text = redact_text(" ".join(text.split()))
    return text if len(text) <= limit else text[:limit] + "..."


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and _secret_key_name(key)


@functools.lru_cache(maxsize=1024)
def _secret_key_name(key: str) -> bool:
    # Keys are the code's own words nearly always: the answer for each is worked out once.
    lowered = key.lower()
    return lowered in _SECRET_KEYS or lowered.endswith(("_token", "_secret", "_password"))


def redact_value(value: Any) -> Any:
    """Redact a log value of any shape, recursing through mappings and sequences."""
    if isinstance(value, str):
        return redact_text(value)
    # Numbers first: they are most of what is not text, and a Mapping check is an ABC's.
    if isinstance(value, int | float) or value is None:
        return value
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if _is_secret_key(k) and v not in (None, "") else redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    # Exceptions, URLs, pydantic models: their text is what a renderer would print.
    return redact_text(str(value))


# Keys seen not to name a secret, so the next event's keys cost a set lookup each. Keys are
# the code's own words nearly always; the bound keeps a caller's keys from growing it.
_PLAIN_KEYS: set[str] = set()
_PLAIN_KEYS_MAX = 1024
# Values redact_value returns as they are (statuses, durations, ids).
_PLAIN_TYPES = frozenset({int, float, bool, type(None)})


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: scrub every key and value of the event."""
    clean = secrets_registry.REGISTRY.clean
    for key, value in list(event_dict.items()):
        if key not in _PLAIN_KEYS:
            if _is_secret_key(key):
                if value not in (None, ""):
                    event_dict[key] = REDACTED
                    continue
            elif key.__class__ is str and len(_PLAIN_KEYS) < _PLAIN_KEYS_MAX:
                _PLAIN_KEYS.add(key)
        kind = value.__class__
        if kind is str:
            # Most values were seen clean before: the set answers without a call.
            if value not in clean:
                event_dict[key] = redact_text(value)
        elif kind not in _PLAIN_TYPES:
            event_dict[key] = redact_value(value)
    return event_dict


class LineWriter:
    """structlog's PrintLogger, one write and one flush a line (``print`` makes two writes)."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lock = threading.Lock()

    def msg(self, message: str) -> None:
        with self._lock:
            self._file.write(message + "\n")
            self._file.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class UtcStamper:
    """Timestamps exactly as ``TimeStamper(fmt="iso", utc=True)`` writes them, at a fifth of
    its cost: the date and time of day are formatted once a second, the microseconds added."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def __call__(self) -> str:
        second, fraction = divmod(time.time_ns() // 1000, 1_000_000)
        cached, prefix = self._second
        if second != cached:
            moment = datetime.datetime.fromtimestamp(second, datetime.UTC)
            prefix = moment.isoformat().removesuffix("+00:00")
            self._second = (second, prefix)
        # isoformat() leaves out a zero fraction; so does this.
        return f"{prefix}.{fraction:06d}Z" if fraction else prefix + "Z"


# Frames of this module are not the caller's: a stack starts where the event was logged.
_STACK = structlog.processors.StackInfoRenderer(additional_ignores=[__name__])
_LEVEL_NAMES = {"warn": "warning", "exception": "error"}
_utc_now = UtcStamper()


def prepare_event(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: what ``merge_contextvars``, ``StackInfoRenderer``,
    ``format_exc_info``, ``redact_processor``, ``add_log_level`` and ``TimeStamper(fmt="iso",
    utc=True)`` did in turn, with the same result, in one call; the stack and exception steps
    run only when the event asks for them (else they did nothing)."""
    event_dict = structlog.contextvars.merge_contextvars(logger, method_name, event_dict)
    if "stack_info" in event_dict:
        event_dict = _STACK(logger, method_name, event_dict)
    if "exc_info" in event_dict:
        event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    # Redaction comes after everything that turns an exception or a stack into text, and
    # before the level and the time, which are the processors' own words.
    event_dict = redact_processor(logger, method_name, event_dict)
    event_dict["level"] = _LEVEL_NAMES.get(method_name, method_name)
    event_dict["timestamp"] = _utc_now()
    return event_dict


def shared_processors() -> list[structlog.types.Processor]:
    return [prepare_event]


def _json(event: Any, **_options: Any) -> str:
    """One event as a JSON line: orjson (a sixth of the standard encoder's time), which
    refuses integers past 64 bits, where the standard encoder takes over."""
    try:
        return orjson.dumps(event, default=str).decode()
    except TypeError:
        return json.dumps(event, default=str)


def render_json(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> str:
    """structlog processor: ``JSONRenderer(serializer=_json)`` without its keyword plumbing."""
    return _json(event_dict)


def configure(level: str = "info", fmt: LogFormat = "auto") -> None:
    """Configure structlog and the stdlib root logger once, at process start."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        render_json if use_json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    writer = LineWriter(sys.stderr)
    structlog.configure(
        processors=[*shared_processors(), renderer],
        wrapper_class=lean_filtering_logger(numeric),
        logger_factory=lambda *_args: writer,
        cache_logger_on_first_use=True,
    )
    # Libraries that log through stdlib (aiohttp.access, asyncio) get the same redaction.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared_processors(),
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # At debug, the Kubernetes client logs every response body: Secrets' data, base64.
    logging.getLogger("kubernetes_asyncio.client.rest").setLevel(max(numeric, logging.INFO))
