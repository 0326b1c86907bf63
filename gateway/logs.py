"""structlog set-up, context binding and the redaction that keeps credentials out of logs.

Redaction runs over every value of every event once exceptions and stacks are text (only the
level and the timestamp, the processors' own words, are added after it), so a token that
reaches a log through an exception message, a URL or a nested dict is still caught.
It works on two levels: keys whose name says "secret" lose their value whatever it looks like,
and string values are scrubbed of the shapes credentials have on the wire (bearer and basic
headers, JWTs, Databricks PATs and OAuth secrets, form fields such as ``client_secret=``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal

import orjson
import structlog

from gateway import secrets_registry

REDACTED = secrets_registry.MASK
# Upstream error text (token endpoint, Jobs API, Kubernetes) is quoted at most this long.
UPSTREAM_MAX_CHARS = 300

LogFormat = Literal["auto", "json", "console"]

_SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "subject_token",
        "actor_token",
        "client_secret",
        "client_assertion",
        "secret",
        "password",
        "api_key",
        "apikey",
        "bearer",
        "jwt",
        "private_key",
        "signing_secret",
        "webhook_secret",
        "x-databricks-azure-sp-management-token",
    }
)

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


def redact_text(text: str) -> str:
    """Return ``text`` with every held secret and every credential-shaped substring replaced."""
    text = secrets_registry.scrub(text)
    if _MAYBE_CREDENTIAL.search(text) is None:
        return text
    for pattern, replacement in _VALUE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


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
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if _is_secret_key(k) and v not in (None, "") else redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    # Exceptions, URLs, pydantic models: their text is what a renderer would print.
    return redact_text(str(value))


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: scrub every key and value of the event."""
    for key in list(event_dict):
        value = event_dict[key]
        if _is_secret_key(key) and value not in (None, ""):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = redact_value(value)
    return event_dict


def shared_processors() -> list[structlog.types.Processor]:
    # Redaction comes after everything that turns an exception or a stack into text, and
    # before the level and the time, which are the processors' own words: scanning them for
    # secrets cost a fifth of a request's log event.
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact_processor,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _json(event: Any, **_options: Any) -> str:
    """One event as a JSON line: orjson (a sixth of the standard encoder's time), which
    refuses integers past 64 bits, where the standard encoder takes over."""
    try:
        return orjson.dumps(event, default=str).decode()
    except TypeError:
        return json.dumps(event, default=str)


def configure(level: str = "info", fmt: LogFormat = "auto") -> None:
    """Configure structlog and the stdlib root logger once, at process start."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_json)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared_processors(), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
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


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


@contextmanager
def bound(**context: Any) -> Iterator[None]:
    """Bind context (request_id, namespace, run_id) for the duration of a block."""
    with structlog.contextvars.bound_contextvars(**context):
        yield
