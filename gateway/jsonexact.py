"""JSON decoding that is quick and exact: orjson where it reads a text as the standard
decoder would, the standard decoder where it would not.

orjson decodes three to five times as quick, but reads an integer past 64 bits (a run of 19
digits can be one) as a float, silently, and refuses what the standard decoder takes (NaN,
Infinity, lone surrogates). Such a text goes to the standard decoder, so the value is the
one ``json.loads`` gives, always.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_LONG_DIGITS = re.compile(r"[0-9]{19}")


def loads(text: str) -> Any:
    """``json.loads(text)``, by orjson when that is the same."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
