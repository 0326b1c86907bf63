"""JSON that is quick and exact: orjson where it reads or writes as the standard library
would, the standard library where it would not.

Decoding: orjson is three to five times as quick, but reads an integer past 64 bits (a run
of 19 digits can be one) as a float, silently, and refuses what the standard decoder takes
(NaN, Infinity, lone surrogates). Such a text goes to the standard decoder, so the value is
the one ``json.loads`` gives, always.

Encoding (``dumps``): orjson is ten times as quick on a large spec, but writes NaN and the
infinities as null, and serialises some of what the standard encoder refuses. Datetimes and
dataclasses are refused here too, anything orjson cannot take goes to the standard encoder,
and any text of orjson's with a null in it is made again by the standard encoder, which
refuses NaN. So for JSON values (what a decoder made: the only values lakegate writes) the
text holds the value ``json.dumps(value, allow_nan=False)`` would, or the same error is
raised; orjson alone still writes a UUID or an Enum, which json refuses. The bytes may
differ (``1e+16`` is ``1e16``): what needs stable bytes, a fingerprint, uses json itself.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# Every ASCII digit made "0", every other byte " ": a run of 19 digits is then a substring
# search, where a regular expression tried its class at every position (270 us for 13 KB).
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_NINETEEN = b"0" * 19
# Datetimes and dataclasses go to ``_refuse``, as the standard encoder refuses them.
_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def long_digits(data: bytes | str) -> bool:
    """Whether ``data`` has a run of 19 ASCII digits: an integer orjson may read as a float."""
    if isinstance(data, str):
        # One UTF-8 copy (a lone surrogate kept, it is no digit) is quicker than a str scan.
        data = data.encode("utf-8", "surrogatepass")
    return _NINETEEN in data.translate(_DIGITS_ONLY)


def loads(text: str) -> Any:
    """``json.loads(text)``, by orjson when that is the same."""
    if not long_digits(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def dumps(value: Any) -> str:
    """Compact JSON of ``value`` (UTF-8 text, not ASCII escapes), as ``json.dumps`` with
    ``allow_nan=False`` reads; ValueError for NaN or an infinity, TypeError for what is not
    JSON."""
    try:
        text = orjson.dumps(value, default=_refuse, option=_STRICT)
    except TypeError:
        # An integer past 64 bits, a key that is not a string (json makes it one), or a
        # value neither takes: json decides, and raises for the last.
        return _standard(value)
    if b"null" in text:
        # orjson's null may have been a NaN or an infinity.
        return _standard(value)
    # A subclass of str, int, float, dict or list is written as its base, as json does.
    return text.decode("utf-8")


def _standard(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
