"""jsonexact.loads reads every text as json.loads does, however quick the path it takes."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway import jsonexact
from tests.support.json_values import json_values

# Integers past 64 bits, NaN, strings with surrogates: what orjson alone reads otherwise.
VALUES = json_values(non_finite=True)


@dataclass
class Point:
    x: int
    y: int


def same(a: Any, b: Any) -> bool:
    """Equal, NaN to NaN, and the same types all the way down (1 is not 1.0 here)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@given(VALUES)
def test_every_text_decodes_as_the_standard_decoder_reads_it(value: Any) -> None:
    text = json.dumps(value)
    assert same(jsonexact.loads(text), json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551616",  # 2**64: orjson alone gives a float
        '{"run_id": -9223372036854775809}',
        '{"a": NaN, "b": Infinity}',
        '"\\ud800"',
        '{"a": 1, "a": 2}',
    ],
)
def test_the_texts_orjson_alone_reads_otherwise(text: str) -> None:
    assert same(jsonexact.loads(text), json.loads(text))


def test_what_is_not_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="property name enclosed in double quotes"):
        jsonexact.loads("{'a': 1}")


# --- dumps ----------------------------------------------------------------------------------


def standard(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@given(VALUES)
def test_every_value_is_written_as_the_standard_encoder_would_read(value: Any) -> None:
    """The text decodes to what json's text decodes to, and each raises where the other does."""
    try:
        expected = standard(value)
    except ValueError:
        with pytest.raises(ValueError, match="not JSON compliant"):
            jsonexact.dumps(value)
        return
    assert same(json.loads(jsonexact.dumps(value)), json.loads(expected))


@pytest.mark.parametrize(
    "value",
    [
        {"n": 2**64},  # past orjson's integers
        {1: "a"},  # a key json turns into text
        [None, {"a": None}],
        {"nested": [{"deep": [1.5, -0.0, 1e300]}]},
    ],
)
def test_the_values_orjson_alone_writes_otherwise(value: Any) -> None:
    assert json.loads(jsonexact.dumps(value)) == json.loads(standard(value))


@pytest.mark.parametrize("value", [float("nan"), {"a": [float("inf")]}, -math.inf])
def test_nan_and_the_infinities_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        jsonexact.dumps(value)


@pytest.mark.parametrize("value", [datetime.now(UTC), {"a": {1, 2}}, object(), Point(1, 2)])
def test_what_json_refuses_is_a_type_error(value: Any) -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonexact.dumps(value)


@given(st.text(alphabet=st.sampled_from("0123456789 ,.-é٣\ud800"), max_size=60))
@example("1" * 19)
@example("[" + "9" * 18 + "]")
@example("é" + "0" * 25)
def test_long_digits_finds_exactly_the_runs_of_19_ascii_digits(text: str) -> None:
    """Other digits (Arabic-Indic, here) are not JSON's; a lone surrogate breaks nothing."""
    expected = re.search("[0-9]{19}", text) is not None
    assert jsonexact.long_digits(text) is expected
    assert jsonexact.long_digits(text.encode("utf-8", "surrogatepass")) is expected
