"""Strict JSON for request bodies, shared by the REST API and the Databricks facade, and the
JSON responses of the hot routes.

Python's json accepts NaN, Infinity and numbers that overflow to infinity; the ledger and
Databricks would later meet them as invalid JSON, so they are refused at the door. Nesting is
measured without recursion, so a hostile body cannot exhaust the stack.

A body is read by orjson when it can be, which also refuses all three, and lone surrogates,
and is several times as quick on a large spec; a body with a run of 19 digits (an integer
orjson would read as a float) or one orjson refuses is read by json, strictly, so the value or
the error is json's. What orjson read holds only real text, and a body with no ``null`` in it
has no null member: the parsers skip the walks that look for those (``JsonBody``).

Responses are rendered by orjson, straight to the bytes of the body: a fifth of what the
standard encoder plus aiohttp's text-to-bytes step cost for a run with its history.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson
from aiohttp import web

from gateway import jsonexact


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


@dataclass(frozen=True, slots=True)
class JsonBody:
    """A decoded request body and what its reading already proved about it."""

    value: Any
    # orjson read it, and orjson refuses a lone surrogate: every key and string is text.
    text_checked: bool
    # The body has "null" somewhere (maybe only inside a string): it may hold null members.
    may_hold_null: bool


def read_json(raw: bytes) -> JsonBody:
    """``raw`` decoded as ``strict_loads`` decodes it, with what the reading proved."""
    # A run of 19 digits may be an integer past 64 bits, which orjson reads as a float.
    if not jsonexact.long_digits(raw):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # json gives the error (or reads what orjson would not, e.g. a BOM)
        else:
            return JsonBody(value, text_checked=True, may_hold_null=b"null" in raw)
    return JsonBody(_standard_loads(raw), text_checked=False, may_hold_null=True)


def strict_loads(raw: bytes) -> Any:
    """Decode JSON, refusing NaN, Infinity and out-of-range numbers (ValueError)."""
    return read_json(raw).value


def _standard_loads(raw: bytes) -> Any:
    return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite)


def depth(value: Any) -> int:
    """How deeply a decoded JSON value nests: 1 for a scalar or an empty container.

    Level by level, holding only the containers of the next one: a large spec's many
    strings and numbers are looked at once each and never stacked (half the time of a walk
    that stacked every node with its level)."""
    deepest = 1
    level = [value]
    while True:
        below: list[Any] = []
        deeper = False
        for node in level:
            kind = type(node)
            if kind is dict:
                children = node.values()
            elif kind is list:
                children = node
            else:
                continue
            if children:
                deeper = True
                below += [c for c in children if type(c) is dict or type(c) is list]
        if not deeper:
            return deepest
        deepest += 1
        level = below


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """``web.json_response``, rendered once by orjson (views hold only JSON types)."""
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json"
    )
