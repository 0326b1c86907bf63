"""Request parameters, pure: query string first, then the JSON body; ints and booleans."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.emulator.databricks.params import BadParam, Params, get_params, post_params


@pytest.mark.parametrize(
    ("query", "body", "expected"),
    [
        ({"run_id": "7"}, {"run_id": 8}, 7),
        ({}, {"run_id": 8}, 8),
        ({"run_id": ""}, {"run_id": 8}, 8),
        ({}, {"run_id": "9"}, 9),
        ({}, {"run_id": "+9"}, 9),
        ({}, {}, None),
    ],
)
def test_an_integer_comes_from_the_query_then_the_body(
    query: dict[str, str], body: dict[str, Any], expected: int | None
) -> None:
    """The query string wins; an empty query value counts as absent; digit strings are ints."""
    assert Params(query, body).integer("run_id") == expected


@pytest.mark.parametrize("value", ["abc", "1.5", "1_000", " 1", True, 1.5, [1], {"a": 1}])
def test_anything_but_an_integer_or_digits_is_refused(value: object) -> None:
    """Booleans, fractions, containers and other strings are not ids."""
    with pytest.raises(BadParam, match="expected an integer"):
        Params(body={"run_id": value}).integer("run_id")


def test_a_required_integer_names_the_missing_field() -> None:
    """A missing required parameter is 'Missing required field: <name>'."""
    with pytest.raises(BadParam, match=r"^Missing required field: run_id$"):
        Params().required_integer("run_id")


@pytest.mark.parametrize(
    ("query", "body", "expected"),
    [
        ({"active_only": "True"}, {}, True),
        ({"active_only": "false"}, {"active_only": True}, False),
        ({}, {"active_only": True}, True),
        ({}, {"active_only": "TRUE"}, True),
        ({}, {}, False),
    ],
)
def test_a_boolean_is_json_or_true_false_in_any_case(
    query: dict[str, str], body: dict[str, Any], expected: bool
) -> None:
    """Booleans are JSON booleans or true/false strings in any case (Airflow sends True)."""
    assert Params(query, body).boolean("active_only") is expected


@pytest.mark.parametrize("value", ["yes", 1, [True]])
def test_a_boolean_that_is_not_one_is_refused(value: object) -> None:
    """Other values for a boolean are a 400."""
    with pytest.raises(BadParam, match="expected true or false"):
        Params(body={"active_only": value}).boolean("active_only")


def test_a_string_parameter_must_be_a_string() -> None:
    """page_token from a body must be a JSON string."""
    assert Params(body={"page_token": "abc"}).string("page_token") == "abc"
    with pytest.raises(BadParam, match="expected a string"):
        Params(body={"page_token": 5}).string("page_token")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"run_id": 5, "x": null}', {"run_id": 5}),
        ("", {}),
        ("[1]", {}),
        ("{oops", {}),
        ('"run_id"', {}),
    ],
)
def test_a_get_body_is_a_json_object_without_nulls_or_nothing(
    text: str, expected: dict[str, Any]
) -> None:
    """A GET body that is not a JSON object gives no parameters rather than an error."""
    assert get_params({}, text).body == expected


@pytest.mark.parametrize("text", ["[1]", "{oops", '"run_id"'])
def test_a_post_body_that_is_no_json_object_is_malformed(text: str) -> None:
    """A POST body must be a JSON object: else MALFORMED_REQUEST."""
    with pytest.raises(BadParam) as refused:
        post_params(text)
    assert refused.value.error_code == "MALFORMED_REQUEST"
