"""Property: whatever a caller sends, the API never answers 500, and every error is a problem.

Random methods, paths (from the route templates and from nowhere), query strings, headers and
bodies (garbage bytes, random JSON, near-valid submissions) go over a real socket to the app
with the in-memory service. Success bodies must match the OpenAPI schemas too.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import SPEC, build_app
from tests.api.fakes import FakeRunService
from tests.api.schema import assert_matches, assert_problem

_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _mostly(good: st.SearchStrategy[str], noise: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Good values four times in five, so requests get past validation to the service."""
    return st.integers(0, 4).flatmap(lambda roll: noise if roll == 0 else good)


namespaces = _mostly(
    st.sampled_from(["team-a", "team-a", "team-b"]),
    st.sampled_from(["Team-A", "-x", "x" * 64, "0"]) | st.text(min_size=1, max_size=20),
)
run_ids = _mostly(
    st.integers(1, 6).map(str),
    st.sampled_from(["0", "-1", "01", "9223372036854775807", "9223372036854775808"])
    | st.text(min_size=1, max_size=20),
)


def _segment(value: str) -> str:
    return quote(value, safe="")


def _runs(ns: str) -> str:
    return f"/v1/namespaces/{_segment(ns)}/runs"


queries = st.lists(
    st.tuples(
        st.sampled_from(["state", "limit", "cursor"]) | st.text(max_size=8),
        st.sampled_from(["RUNNING", "queued,PENDING", "1", "500", "501", ""])
        | st.text(max_size=12),
    ),
    max_size=4,
)

# Often no query at all, so GETs reach the service rather than stop at validation.
some_queries: st.SearchStrategy[list[tuple[str, str]]] = st.just([]) | st.just([]) | queries

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)
headers = st.fixed_dictionaries(
    {},
    optional={
        "X-Request-Id": st.sampled_from(["req-1", "a.b_c"]) | header_text,
        "Idempotency-Key": st.sampled_from(["job-1", "job-2"]) | header_text,
        "Content-Type": st.sampled_from(["application/json", "text/plain"]) | header_text,
    },
)

tasks = st.lists(st.fixed_dictionaries({"task_key": st.text(max_size=8)}) | json_values, max_size=3)
label_maps = st.dictionaries(
    st.sampled_from(["team", "env", "a/b"]) | st.text(max_size=70),
    st.text(max_size=300) | json_values,
    max_size=5,
)
submissions = st.fixed_dictionaries(
    {"spec": st.just(SPEC) | st.fixed_dictionaries({"tasks": tasks}) | json_values},
    optional={
        "callback_url": st.sampled_from(["https://hooks.example.com/x", "ftp://x"]) | json_values,
        "labels": label_maps,
        "extra": json_values,
    },
)
valid_submissions = st.fixed_dictionaries(
    {
        "spec": st.just(SPEC)
        | st.fixed_dictionaries(
            {"tasks": st.lists(st.fixed_dictionaries({"task_key": st.text()}), min_size=1)}
        )
    },
    optional={
        "callback_url": st.just("https://hooks.example.com/x"),
        "labels": st.dictionaries(st.sampled_from(["team", "env", "a/b"]), st.text(max_size=20)),
    },
)
bodies = st.one_of(
    valid_submissions.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    valid_submissions.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    submissions.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    st.none(),
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
)
no_body: st.SearchStrategy[bytes | None] = st.none() | st.binary(max_size=50)

# Requests shaped like the routes: the right method on a templated path.
routed = st.one_of(
    st.tuples(st.just("POST"), namespaces.map(_runs), some_queries, headers, bodies),
    st.tuples(st.just("POST"), namespaces.map(_runs), some_queries, headers, bodies),
    st.tuples(st.just("GET"), namespaces.map(_runs), some_queries, headers, no_body),
    st.tuples(
        st.just("GET"),
        st.builds(lambda ns, r: f"{_runs(ns)}/{_segment(r)}", namespaces, run_ids),
        some_queries,
        headers,
        no_body,
    ),
    st.tuples(
        st.just("POST"),
        st.builds(lambda ns, r: f"{_runs(ns)}/{_segment(r)}/cancel", namespaces, run_ids),
        some_queries,
        headers,
        no_body,
    ),
    st.tuples(
        st.just("GET"),
        st.sampled_from(["/healthz", "/readyz", "/metrics", "/openapi.json"]),
        some_queries,
        headers,
        no_body,
    ),
)
# Anything at all: any method on any path, known or not.
anything = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    st.one_of(
        st.sampled_from(["/", "/v1", "/v1/namespaces", "/healthz", "/v1/namespaces/team-a/runs"]),
        st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=5).map(
            lambda parts: "/" + "/".join(_segment(p) for p in parts)
        ),
    ),
    queries,
    headers,
    bodies,
)


async def _check(
    client: TestClient[web.Request, web.Application],
    request: tuple[str, str, list[tuple[str, str]], dict[str, str], bytes | None],
) -> None:
    method, path, query, sent_headers, body = request
    resp = await client.request(method, path, params=query, headers=sent_headers, data=body)
    payload: Any = await resp.read()
    assert resp.status < 500, payload
    request_id = resp.headers["X-Request-Id"]
    assert _SANE_ID.match(request_id)
    given_id = sent_headers.get("X-Request-Id", "").strip()
    if _SANE_ID.match(given_id):
        assert request_id == given_id
    if resp.status >= 400:
        assert resp.content_type == "application/problem+json", payload
        problem = json.loads(payload)
        assert_problem(problem, resp.status)
        assert problem["request_id"] == request_id
    elif path.startswith("/v1/"):
        run_json = json.loads(payload)
        schema = (
            "RunPage" if "runs" in run_json else "RunDetail" if "history" in run_json else "Run"
        )
        assert_matches(schema, run_json)


async def _start() -> TestClient[web.Request, web.Application]:
    client: TestClient[web.Request, web.Application] = TestClient(
        TestServer(build_app(FakeRunService()))
    )
    await client.start_server()
    return client


def _run_examples(strategy: st.SearchStrategy[Any], examples: int) -> None:
    # One server for every example: a sync test driving its own loop, because Hypothesis
    # calls the test body once per example.
    with asyncio.Runner() as runner:
        client = runner.run(_start())
        try:

            @settings(
                max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
            )
            @given(strategy)
            def check(request: Any) -> None:
                runner.run(_check(client, request))

            check()
        finally:
            runner.run(client.close())


def test_route_shaped_requests_never_get_a_500_and_errors_are_problems() -> None:
    """Random params, headers and bodies on every route: no 500, errors are problems."""
    _run_examples(routed, 400)


def test_any_request_never_gets_a_500_and_errors_are_problems() -> None:
    """Random methods and paths: no 500, and every error (404, 405, ...) is a problem."""
    _run_examples(anything, 200)
