"""Request bodies: read_json reads every body as the strict standard decoder does, however
quick the path it takes, and what it says it proved holds."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.api.jsonbody import depth, read_json, strict_loads
from gateway.api.schemas import unencodable
from tests.support.json_values import json_values

# Bodies a client may send: integers past 64 bits, floats near the ends of the range, text
# with escapes and lone surrogates, nulls.
VALUES = json_values(int_bits=80)


def standard(raw: bytes) -> Any:
    """What lakegate's strict reading was before orjson: json, refusing NaN and infinities."""

    def finite(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError("number out of range")
        return value

    def constant(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(raw, parse_float=finite, parse_constant=constant)


def nulls(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(nulls(child) for child in value.values())
    if isinstance(value, list):
        return any(nulls(child) for child in value)
    return False


@given(VALUES, st.booleans())
def test_every_body_reads_as_the_strict_standard_decoder_reads_it(
    value: Any, ascii_only: bool
) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    expected = standard(raw)
    body = read_json(raw)
    assert json.dumps(body.value) == json.dumps(expected)  # the same values, types included
    if body.text_checked:
        assert unencodable(body.value) is None
    if not body.may_hold_null:
        assert not nulls(body.value)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"n": 18446744073709551616}',  # 2**64: orjson alone gives a float
        '\ufeff{"a": 1}'.encode(),  # a BOM, which json reads and orjson does not
        b'{"s": "\\ud800"}',  # a lone surrogate: json reads it, the parsers then refuse it
    ],
)
def test_the_bodies_orjson_alone_reads_otherwise(raw: bytes) -> None:
    body = read_json(raw)
    assert json.dumps(body.value) == json.dumps(standard(raw))
    assert not body.text_checked


def test_a_repeated_key_keeps_its_last_value_on_either_path() -> None:
    assert read_json(b'{"a": 1, "a": 2}').value == standard(b'{"a": 1, "a": 2}') == {"a": 2}


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b"[Infinity]", b"[1e400]", b"{'a': 1}", b"nul"])
def test_what_the_strict_reading_refuses_is_still_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json's messages vary by case
        read_json(raw)
    with pytest.raises(ValueError):  # noqa: PT011
        strict_loads(raw)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1),
        ("x", 1),
        ({}, 1),
        ([], 1),
        ({"a": 1}, 2),
        ([[]], 2),
        ({"a": [{"b": None}]}, 4),
        ([1, [2, [3, [4]]], {"k": "v"}], 5),
    ],
)
def test_depth_counts_levels(value: Any, expected: int) -> None:
    assert depth(value) == expected


def test_depth_of_a_deep_value_needs_no_recursion() -> None:
    value: Any = 0
    for _ in range(50_000):
        value = [value]
    assert depth(value) == 50_001
