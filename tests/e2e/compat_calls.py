"""Generated requests for the Databricks-compatible API (/api/2.1 and /api/2.2 jobs/runs/*).

The facade has no OpenAPI document of its own; its contract is Databricks' (the error shape
``{"error_code", "message", "details": [RequestInfo]}``, the statuses clients branch on).
Requests are what Databricks clients send (``Authorization: Bearer`` with an API key,
``X-Lakegate-Namespace``, JSON bodies, runs of the stack's own and of other namespaces, page
tokens runs/list handed out) mixed with what attackers send: bad JSON, wrong types, nulls,
lone surrogates, huge numbers, string ids, names with a trailing newline, duplicate
credential and namespace headers, overflowing and forged page tokens and offsets, wrong
methods and unknown endpoints. ``check_compat`` holds every answer to that contract: never a
5xx, and another namespace's run looks like no run at all.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import yarl
from hypothesis import strategies as st
from multidict import CIMultiDict

from tests.e2e.generation import (
    ATTACK_TEXT,
    OVERFLOWING_CURSORS,
    SANE_REQUEST_ID,
    Callers,
    Known,
    Pools,
    as_json,
    header_text,
    json_values,
    noise_text,
    weighted,
)
from tests.e2e.specs import OUTCOMES, spec

NAMESPACE_HEADER = "X-Lakegate-Namespace"
LABELS_HEADER = "X-Lakegate-Labels"
ENDPOINTS = {"submit": "POST", "get": "GET", "get-output": "GET", "list": "GET", "cancel": "POST"}
# What Databricks clients branch on; the facade answers nothing else (a 5xx least of all).
STATUSES = {200, 400, 401, 403, 404, 409, 429}
ERROR_CODES = {
    401: {"UNAUTHENTICATED"},
    403: {"PERMISSION_DENIED"},
    404: {"ENDPOINT_NOT_FOUND", "RESOURCE_DOES_NOT_EXIST"},
    409: {"RESOURCE_CONFLICT", "RESOURCE_ALREADY_EXISTS"},
    429: {"REQUEST_LIMIT_EXCEEDED"},
}
ERROR_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")
USER_AGENTS = (
    "databricks-sdk-py/0.38.0 python/3.11.7 os/linux auth/pat",
    "databricks-airflow/6.11.0 _/0.0.0 python/3.11.7 os/linux airflow/2.10.2",
    "databricks-cli/0.229.0 databricks-sdk-go/0.49.0 go/1.22.7 os/linux auth/pat",
)


def _token(data: Any) -> str:
    return base64.urlsafe_b64encode(as_json(data)).decode().rstrip("=")


# Page tokens no runs/list handed out: forged counts, cursors and nesting (issue 9).
FORGED_PAGE_TOKENS = (
    _token({"c": None, "s": 10**30, "o": 10**30}),
    _token({"c": None, "s": 2**63, "o": -1}),
    *(_token({"c": cursor, "s": 0}) for cursor in OVERFLOWING_CURSORS),
    _token({"c": "\ud800", "s": 0}),
    base64.urlsafe_b64encode(b"[" * 3000).decode(),
    base64.urlsafe_b64encode(b'{"c":null,"s":' + b"9" * 4500 + b"}").decode(),
    "9" * 400,
    "%%%",
)
HUGE_NUMBERS = ("9" * 40, "-" + "9" * 40, str(2**63), str(2**63 - 1), str(-(2**63)), "1e400")
ID_TEXT = (*HUGE_NUMBERS, "abc", "12a", "1.5", "", " 7", "0x1f", "\u0663", "1_000", "-1", "0")


@dataclass(frozen=True)
class CompatCall:
    """One facade request. ``run`` names a known run, whose id goes in the query (GET) or the
    body (cancel), as a number or as text; ``follow_run`` sends that run's namespace (or, for
    a ``foreign-run``, the next one) as X-Lakegate-Namespace."""

    method: str
    path: str
    endpoint: str | None
    query: tuple[tuple[str, str | Known], ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    run: Known | None = None
    run_as_text: bool = False
    follow_run: bool = False

    def resolved(self, pools: Pools) -> tuple[str, tuple[tuple[str, str], ...], bytes | None]:
        """The query string, headers and body, with known values filled in."""
        headers, body = list(self.headers), self.body
        pairs: list[tuple[str, str]] = []
        target = pools.run_for(self.run) if self.run is not None else None
        for name, value in self.query:
            if isinstance(value, Known):
                value = pools.pick(value) or "Ym9ndXM"
            pairs.append((name, value))
        if self.run is not None:
            run_id = target[1] if target else "1"
            if self.method == "GET":
                pairs.append(("run_id", run_id))
            else:
                body = as_json({"run_id": run_id if self.run_as_text else int(run_id)})
            if self.follow_run and target is not None:
                headers = [(k, v) for k, v in headers if k != NAMESPACE_HEADER]
                headers.append((NAMESPACE_HEADER, target[0]))
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
        return query, tuple(headers), body


# --- strategies -----------------------------------------------------------------------------

run_names = weighted(
    (6, st.text(max_size=16)), (1, st.sampled_from(ATTACK_TEXT)), (1, st.none() | json_values)
)
runnable = st.builds(spec, run_names, st.sampled_from(sorted(OUTCOMES)), st.just(1))
idempotency_tokens = st.sampled_from(["tok-1", "tok-2", "tok-3", "tok-4\n"])
# One field of a submission made wrong: each once got, or could get, a 5xx.
hostile_fields = st.sampled_from(
    [
        ("timeout_seconds", 10**30),
        ("timeout_seconds", "60"),
        ("timeout_seconds", None),
        ("timeout_seconds", -1.5),
        ("idempotency_token", 12),
        ("idempotency_token", None),
        ("idempotency_token", "t" * 65),
        ("idempotency_token", "\ud800"),
        ("tasks", None),
        ("tasks", []),
        ("tasks", "main"),
        ("tasks", [1]),
        ("tasks", [{}]),
        ("tasks", [{"task_key": "\ud800"}]),
        ("tasks", [{"task_key": "main\n", "notebook_task": None}]),
        ("tasks", [{"task_key": 10**40}]),
        ("access_control_list", [{"user_name": None, "permission_level": 10**30}]),
        ("git_source", {"git_url": "\udfff"}),
    ]
)


@st.composite
def submit_bodies(draw: st.DrawFn) -> bytes:
    body = dict(draw(runnable))
    if draw(st.booleans()):
        body["idempotency_token"] = draw(idempotency_tokens)
    if draw(st.integers(0, 3)) == 0:
        key, value = draw(hostile_fields)
        body[key] = value
    if draw(st.integers(0, 5)) == 0:
        body[draw(st.text(max_size=8) | st.sampled_from(ATTACK_TEXT))] = draw(json_values)
    return as_json(body)


broken_json = st.sampled_from(
    [b"{", b'{"tasks": [', b"\xff\xfe{}", b"[" * 3000, b'{"run_id": 1e400}', b"null", b'"x"']
)
any_body = weighted(
    (3, json_values.map(as_json)), (2, broken_json), (1, st.binary(max_size=64)), (1, st.none())
)
run_id_text = st.sampled_from(ID_TEXT) | st.integers(-10, 10_000).map(str)
cancel_ids = (
    st.sampled_from([None, True, 1.5, [1], {"id": 1}, "\ud800", "abc", "12a", 10**30, -(2**63)])
    | st.integers(-10, 10_000)
    | st.sampled_from(HUGE_NUMBERS)
)


def known_run() -> st.SearchStrategy[Known]:
    return st.builds(Known, st.sampled_from(["run", "run", "run", "foreign-run"]), st.integers())


def namespace_headers(namespaces: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    one = st.sampled_from(namespaces)
    return weighted(
        (8, one.map(lambda ns: [(NAMESPACE_HEADER, ns)])),
        (3, st.just([])),
        (
            1,
            st.lists(one, min_size=2, max_size=2).map(lambda v: [(NAMESPACE_HEADER, n) for n in v]),
        ),
        (1, header_text.map(lambda v: [(NAMESPACE_HEADER, v)])),
        (1, one.map(lambda ns: [(NAMESPACE_HEADER, ns.upper() + " ")])),
    )


def other_headers(method: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    content = weighted(
        (4, st.just([("Content-Type", "application/json")])),
        (1, st.just([])),
        (1, header_text.map(lambda v: [("Content-Type", v)])),
    )
    labels = weighted(
        (6, st.just([])),
        (2, st.just([(LABELS_HEADER, "team=etl,tier=gold")])),
        (1, header_text.map(lambda v: [(LABELS_HEADER, v)])),
        (1, st.just([(LABELS_HEADER, "a=b"), (LABELS_HEADER, "bad")])),
    )
    agent = st.sampled_from(USER_AGENTS).map(lambda v: [("User-Agent", v)])
    groups = (content, labels, agent) if method == "POST" else (agent,)
    return st.tuples(*groups).map(lambda gs: [h for g in gs for h in g])


def list_queries() -> st.SearchStrategy[list[tuple[str, str | Known]]]:
    number = st.integers(-5, 40).map(str) | st.sampled_from((*HUGE_NUMBERS, "abc", ""))
    flag = st.sampled_from(["true", "false", "True", "FALSE", "1", "yes", ""])
    page = weighted(
        (3, st.builds(Known, st.just("page"), st.integers())),
        (2, st.sampled_from(FORGED_PAGE_TOKENS)),
        (1, noise_text),
    )
    pieces: list[st.SearchStrategy[Any]] = [
        st.sampled_from(["limit", "offset"]).flatmap(lambda n: number.map(lambda v: (n, v))),
        page.map(lambda v: ("page_token", v)),
        st.sampled_from(["active_only", "completed_only", "expand_tasks"]).flatmap(
            lambda n: flag.map(lambda v: (n, v))
        ),
        st.sampled_from(["start_time_from", "start_time_to", "job_id"]).flatmap(
            lambda n: (number | st.sampled_from(["0", "1700000000000"])).map(lambda v: (n, v))
        ),
        st.sampled_from(["SUBMIT_RUN", "JOB_RUN", "WORKFLOW_RUN", "submit_run", "\x7f"]).map(
            lambda v: ("run_type", v)
        ),
        st.tuples(st.text(max_size=8), st.text(max_size=16)),
    ]
    return st.lists(st.one_of(*pieces), max_size=4)


def get_queries() -> st.SearchStrategy[list[tuple[str, str]]]:
    flag = st.sampled_from(["true", "True", "false", "maybe"])
    extra = st.one_of(
        st.sampled_from(["include_history", "include_resolved_values"]).flatmap(
            lambda n: flag.map(lambda v: (n, v))
        ),
        st.sampled_from(FORGED_PAGE_TOKENS).map(lambda v: ("page_token", v)),
        run_id_text.map(lambda v: ("run_id", v)),
    )
    return st.lists(extra, max_size=2)


def _call(
    endpoint: str, version: str, query: Any, headers: Any, body: Any, **run: Any
) -> CompatCall:
    return CompatCall(
        method=ENDPOINTS[endpoint],
        path=f"/api/{version}/jobs/runs/{endpoint}",
        endpoint=endpoint,
        query=tuple(query),
        headers=tuple(headers),
        body=body,
        **run,
    )


def compat_calls(callers: Callers, namespaces: list[str]) -> st.SearchStrategy[CompatCall]:
    """Every endpoint, both versions, with the callers' and attackers' inputs mixed."""
    version = weighted((3, st.just("2.1")), (1, st.just("2.2")))

    def headers(method: str) -> st.SearchStrategy[list[tuple[str, str]]]:
        groups = (callers.headers(), namespace_headers(namespaces), other_headers(method))
        return st.tuples(*groups).map(lambda gs: [h for g in gs for h in g])

    def by_run(endpoint: str) -> st.SearchStrategy[CompatCall]:
        method = ENDPOINTS[endpoint]
        known = st.builds(
            _call,
            st.just(endpoint),
            version,
            st.just(()),
            headers(method),
            st.none(),
            run=known_run(),
            run_as_text=st.booleans(),
            follow_run=weighted((5, st.just(True)), (1, st.just(False))),
        )
        if method == "GET":
            literal_query = st.tuples(run_id_text.map(lambda v: ("run_id", v)))
            literal = st.builds(
                _call,
                st.just(endpoint),
                version,
                literal_query | get_queries(),
                headers(method),
                st.none(),
            )
        else:
            cancel_body = cancel_ids.map(lambda v: as_json({"run_id": v}))
            literal = st.builds(
                _call,
                st.just(endpoint),
                version,
                st.just(()),
                headers(method),
                cancel_body | any_body,
            )
        return weighted((3, known), (2, literal))

    submit = st.builds(
        _call,
        st.just("submit"),
        version,
        st.just(()),
        headers("POST"),
        weighted((6, submit_bodies()), (1, any_body)),
    )
    listing = st.builds(_call, st.just("list"), version, list_queries(), headers("GET"), st.none())
    return weighted(
        (4, submit),
        (3, by_run("get")),
        (2, by_run("get-output")),
        (2, by_run("cancel")),
        (3, listing),
        (1, stray_calls(callers, namespaces)),
    )


def stray_calls(callers: Callers, namespaces: list[str]) -> st.SearchStrategy[CompatCall]:
    """Wrong methods on real endpoints, and endpoints the facade does not have."""
    wrong_method = st.sampled_from(sorted(ENDPOINTS)).flatmap(
        lambda e: st.sampled_from(
            [m for m in ("GET", "POST", "PUT", "DELETE", "PATCH") if m != ENDPOINTS[e]]
        ).map(lambda m: (m, f"/api/2.1/jobs/runs/{e}"))
    )
    nowhere = st.sampled_from(
        [
            "/api/2.0/jobs/runs/get",
            "/api/2.3/jobs/runs/list",
            "/api/2.1/jobs/runs/nope",
            "/api/2.1/jobs/runs/get/extra",
            "/api/2.1/jobs/runs/submit%2F..",
            "/api/2.1/jobs/list",
            "/api/%ED%A0%80",
        ]
    ).flatmap(lambda p: st.sampled_from(["GET", "POST"]).map(lambda m: (m, p)))
    return st.builds(
        lambda target, headers, body: CompatCall(
            target[0], target[1], None, (), tuple(headers), body
        ),
        wrong_method | nowhere,
        st.tuples(callers.headers(), namespace_headers(namespaces)).map(
            lambda gs: [h for g in gs for h in g]
        ),
        st.none() | st.binary(max_size=32),
    )


# --- sending and checking -------------------------------------------------------------------


@dataclass(frozen=True)
class CompatAnswer:
    call: CompatCall
    headers_sent: tuple[tuple[str, str], ...]
    body_sent: bytes | None
    status: int
    media_type: str
    headers: CIMultiDict[str]
    body: bytes

    def __str__(self) -> str:
        sent = (self.body_sent or b"")[:200]
        return (
            f"{self.call.method} {self.call.path} {dict(self.call.query)} body={sent!r} "
            f"-> {self.status}: {self.body[:500]!r}"
        )


async def send_compat(
    session: aiohttp.ClientSession, base: str, pools: Pools, callers: Callers, call: CompatCall
) -> None:
    query, headers, body = call.resolved(pools)
    url = yarl.URL(base + call.path + (f"?{query}" if query else ""), encoded=True)
    async with session.request(
        call.method, url, headers=list(headers), data=body, allow_redirects=False
    ) as resp:
        answer = CompatAnswer(
            call,
            headers,
            body,
            resp.status,
            resp.content_type,
            resp.headers.copy(),
            await resp.read(),
        )
    pools.compat_sent += 1
    pools.compat_statuses[call.endpoint or "stray", answer.status] += 1
    check_compat(answer)
    learn_compat(pools, callers, answer)
    foreign = call.run is not None and call.run.pool == "foreign-run" and call.follow_run
    if foreign and call.endpoint in ("get", "cancel") and pools.runs:
        check_foreign(answer, callers, pools)


def check_compat(answer: CompatAnswer) -> None:
    """The answer is one a Databricks client can read: never a 5xx, errors in its shape."""
    assert answer.status < 500, str(answer)
    assert answer.status in STATUSES, str(answer)
    request_id = answer.headers.get("X-Request-Id", "")
    assert SANE_REQUEST_ID.match(request_id), str(answer)
    assert answer.media_type == "application/json", str(answer)
    payload = json.loads(answer.body)
    assert isinstance(payload, dict), str(answer)
    if answer.status >= 400:
        assert set(payload) == {"error_code", "message", "details"}, str(answer)
        assert ERROR_CODE.match(payload["error_code"]), str(answer)
        assert payload["error_code"] in ERROR_CODES.get(answer.status, {payload["error_code"]})
        assert isinstance(payload["message"], str), str(answer)
        assert payload["details"][0]["request_id"] == request_id, str(answer)
        if answer.status == 429:
            assert int(answer.headers["Retry-After"]) >= 1, str(answer)
        return
    assert answer.call.endpoint is not None, f"a stray request succeeded: {answer}"
    check_success(answer.call.endpoint, payload, answer)


def check_success(endpoint: str, payload: dict[str, Any], answer: CompatAnswer) -> None:
    if endpoint == "submit":
        assert set(payload) == {"run_id"}, str(answer)
        assert isinstance(payload["run_id"], int), str(answer)
    elif endpoint == "get":
        assert isinstance(payload.get("run_id"), int), str(answer)
        assert isinstance(payload.get("state"), dict), str(answer)
    elif endpoint == "cancel":
        assert payload == {}, str(answer)
    elif endpoint == "list":
        assert isinstance(payload.get("has_more"), bool), str(answer)
        assert all(isinstance(run["run_id"], int) for run in payload.get("runs", [])), str(answer)
        assert payload["has_more"] == ("next_page_token" in payload), str(answer)


def check_foreign(answer: CompatAnswer, callers: Callers, pools: Pools) -> None:
    """Another namespace's run, asked for by a caller who may act there: no such run."""
    if not callers.admits_everywhere(answer.headers_sent):
        return
    pools.foreign_checked += 1
    assert answer.status == 400, f"another tenant's run: {answer}"
    assert json.loads(answer.body)["message"].endswith(" does not exist."), str(answer)


def learn_compat(pools: Pools, callers: Callers, answer: CompatAnswer) -> None:
    """Remember runs the facade made and page tokens runs/list handed out."""
    if answer.status != 200:
        return
    payload = json.loads(answer.body)
    if answer.call.endpoint == "submit":
        named = [v for k, v in answer.headers_sent if k == NAMESPACE_HEADER]
        namespace = named[0] if named else callers.single_namespace
        pools.runs.append((namespace, str(payload["run_id"])))
        pools.compat_created[namespace] += 1
    elif answer.call.endpoint == "list" and payload.get("next_page_token"):
        pools.page_tokens.append(payload["next_page_token"])
