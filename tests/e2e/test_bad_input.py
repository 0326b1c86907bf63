"""Bad input never gets a 5xx (issue 9): overflowing cursors, lone surrogates, names ending in
a newline and duplicate credential headers are each a 400 naming the field."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.e2e.specs import spec
from tests.fixtures.gateway import StackFactory, namespace_name

NS = namespace_name(0)
RUNS = f"/v1/namespaces/{NS}/runs"


def raw(payload: Any) -> bytes:
    """JSON as a client may send it: a lone surrogate escaped (\\ud800), which parses."""
    return json.dumps(payload).encode()


CASES: list[tuple[str, str, str, dict[str, str], bytes | None]] = [
    ("cursor overflow", "GET", f"{RUNS}?cursor={'9' * 400}", {}, None),
    ("page token overflow", "GET", f"{RUNS}?cursor=MTg0NDY3NDQwNzM3MDk1NTE2MTY5OTk5", {}, None),
    ("surrogate in spec", "POST", RUNS, {}, raw({"spec": {**spec("x"), "run_name": "\ud800"}})),
    ("surrogate in label", "POST", RUNS, {}, raw({"spec": spec("x"), "labels": {"a": "\ud800"}})),
    (
        "surrogate key",
        "POST",
        RUNS,
        {"Idempotency-Key": "k"},
        raw({"spec": spec("x"), "\ud800": 1}),
    ),
    (
        "secret name with a newline",
        "POST",
        RUNS,
        {},
        raw({"spec": spec("x"), "identity": {"secret": "databricks-token\n"}}),
    ),
    (
        "account name with a newline",
        "POST",
        RUNS,
        {},
        raw({"spec": spec("x"), "identity": {"service_account": "runner\n"}}),
    ),
    ("namespace with a newline", "GET", f"/v1/namespaces/{NS}%0A/runs", {}, None),
]


@pytest.mark.e2e
async def test_bad_input_is_a_400_never_a_5xx(gateway_stack_factory: StackFactory) -> None:
    """Each attack input gets a 4xx problem+json, none a 5xx, and names what is wrong."""
    stack = await gateway_stack_factory(namespaces=1)
    answers = {}
    async with aiohttp.ClientSession() as session:
        for name, method, path, headers, body in CASES:
            async with session.request(
                method,
                stack.url + path,
                data=body,
                headers={"Content-Type": "application/json", **headers},
            ) as resp:
                answers[name] = (resp.status, await resp.text())
    fivexx = {k: v for k, v in answers.items() if v[0] >= 500}
    assert fivexx == {}
    for name, (status, text) in answers.items():
        assert status == 400, (name, status, text)
        assert "field" in json.loads(text), (name, text)
