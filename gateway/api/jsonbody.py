"""Strict JSON for request bodies, shared by the REST API and the Databricks facade.

Python's json accepts NaN, Infinity and numbers that overflow to infinity; the ledger and
Databricks would later meet them as invalid JSON, so they are refused at the door. Nesting is
measured without recursion, so a hostile body cannot exhaust the stack.
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def strict_loads(raw: bytes | str) -> Any:
    """Decode JSON, refusing NaN, Infinity and out-of-range numbers (ValueError)."""
    return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite)


def depth(value: Any) -> int:
    """How deeply a decoded JSON value nests."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)
    return deepest
