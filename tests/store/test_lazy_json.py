"""LazyObject: a run's spec behind the Mapping interface, decoded once, on first read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors import StoreError
from gateway.store._lazy_json import LazyObject

SPEC: dict[str, Any] = {"run_name": "x", "tasks": [{"task_key": "a", "n": 2**70}], "u": "é"}


def lazy(value: Any) -> LazyObject:
    return LazyObject(json.dumps(value), 7)


def test_it_reads_as_the_dict_it_holds() -> None:
    spec = lazy(SPEC)
    assert spec == SPEC
    assert SPEC == spec  # noqa: SIM300 - the reflected comparison, a dict's side
    assert dict(spec) == SPEC
    assert {**spec} == SPEC
    assert spec["tasks"][0]["n"] == 2**70  # exact: jsonexact, not a float
    assert spec.get("missing") is None
    assert "run_name" in spec
    assert len(spec) == 3
    assert sorted(spec) == sorted(SPEC)
    assert list(spec.items()) == list(SPEC.items())
    assert repr(spec) == repr(SPEC)


def test_equality_with_other_mappings() -> None:
    assert lazy(SPEC) == lazy(SPEC)
    assert LazyObject('{"a": 1}', 1) == LazyObject('{"a":1}', 2)  # the values, not texts
    assert lazy(SPEC) != lazy({**SPEC, "run_name": "y"})
    assert lazy(SPEC) != [SPEC]
    with pytest.raises(TypeError):
        hash(lazy(SPEC))


def test_it_decodes_once() -> None:
    spec = lazy(SPEC)
    first = spec["tasks"]
    assert spec["tasks"] is first


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"a string"', "null"])
def test_a_text_that_is_no_json_object_is_a_store_error_naming_it(text: str) -> None:
    spec = LazyObject(text, 7)  # made without complaint: nothing is read
    with pytest.raises(StoreError, match="the spec of run 7 in the ledger is malformed"):
        spec.get("run_name")
    with pytest.raises(StoreError):
        dict(spec)
