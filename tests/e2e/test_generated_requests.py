"""Generated requests against the real stack: no 5xx, documented answers, errors as problems.

The requests are derived from the OpenAPI document the gateway serves at /openapi.json: each
operation's path, query and header parameters and its request body get Hypothesis strategies
built from their JSON schemas. They are mixed with what real callers send, so that requests
get through to the service, the SQLite ledger and the Databricks emulator (the stack's own
PAT and OAuth namespaces, runs it created, cursors it handed out, runnable specs), and with
noise (random text and bytes, broken bodies, repeated headers, oversized bodies, wrong
methods, paths no route serves). Every answer is checked against the same document: a status
the operation lists, a body matching the schema for that status and media type, and every
error an application/problem+json carrying the request id.

Each batch also carries as many requests to the Databricks-compatible facade
(``compat_calls``), against the same stack, ledger and emulator: runs made through one API
are asked for through the other. Callers authenticate as real clients do, with API keys in
``Authorization: Bearer`` (``generation.Callers``), and sometimes as attackers do.

Hypothesis runs in a worker thread and hands each batch of requests to the test's event loop,
where the gateway and the emulator serve; a batch is sent concurrently, as callers do.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
import pytest
import yarl
from hypothesis import HealthCheck, Phase, given, provisional, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from openapi_schema_validator import OAS31Validator, oas31_format_checker

from tests.e2e.compat_calls import CompatCall, compat_calls, send_compat
from tests.e2e.generation import (
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
from tests.fixtures.gateway import StackFactory

# 700 batches of 7 or 8 requests to each API: at least 4,900 requests each, and more as every
# batch's requests are counted (issue 9 asks for 5,000 or more on each).
BATCHES = 700
BATCH_SIZES = (7, 8)
MIN_REQUESTS = 5000
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
STRAY_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
PROBLEM = "application/problem+json"
# How the API routes a path parameter: any one encoded segment (its pattern is [^/]+, so a
# bad name or id reaches the handler and gets a 400 naming the field).
ROUTED_SEGMENT = r"[^/]+"

JsonSchema = dict[str, Any]

# --- the document ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    parameters: list[JsonSchema]
    body_schema: JsonSchema | None
    responses: dict[str, JsonSchema]

    def params(self, where: str) -> list[JsonSchema]:
        return [p for p in self.parameters if p["in"] == where]


class Document:
    """The served OpenAPI document: its operations with references resolved, and validation."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.operations: list[Operation] = []
        self._validators: dict[str, OAS31Validator] = {}
        for template, item in raw["paths"].items():
            shared = [self.deref(p) for p in item.get("parameters", [])]
            segments = re.sub(r"\\\{\w+\\\}", ROUTED_SEGMENT, re.escape(template))
            for method, op in item.items():
                if method not in HTTP_METHODS:
                    continue
                body = self.deref(op.get("requestBody"))
                self.operations.append(
                    Operation(
                        method=method.upper(),
                        template=template,
                        pattern=re.compile(f"^{segments}$"),
                        parameters=shared + [self.deref(p) for p in op.get("parameters", [])],
                        body_schema=body["content"]["application/json"]["schema"] if body else None,
                        responses={c: self.deref(r) for c, r in op["responses"].items()},
                    )
                )

    def deref(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.raw
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def strategy(self, schema: JsonSchema) -> st.SearchStrategy[Any]:
        """Instances of ``schema``, each checked against it, so a generator slip shows."""
        return _SchemaStrategy(self).build(schema).map(lambda v: self._valid(schema, v))

    def errors(self, schema: JsonSchema, instance: Any) -> list[str]:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            # '#/components/...' references resolve against this wrapper, which carries them.
            self._validators[key] = OAS31Validator(
                {**schema, "components": self.raw["components"]},
                format_checker=oas31_format_checker,
            )
        errors = self._validators[key].iter_errors(instance)
        return [f"{list(e.absolute_path)}: {e.message}" for e in errors]

    def _valid(self, schema: JsonSchema, instance: Any) -> Any:
        errors = self.errors(self.deref(schema), instance)
        assert not errors, f"generated {instance!r} does not match its schema: {errors}"
        return instance

    def routed(self, raw_path: str) -> list[Operation]:
        """The operations, of any method, whose path template matches ``raw_path``."""
        return [op for op in self.operations if op.pattern.match(raw_path)]


class _SchemaStrategy:
    """Hypothesis strategies from the JSON Schema keywords the document uses.

    hypothesis-jsonschema would do this, but its object support calls Hypothesis internals
    that current Hypothesis no longer has; the document needs only this small subset.
    """

    def __init__(self, doc: Document) -> None:
        self._doc = doc

    def build(self, schema: JsonSchema) -> st.SearchStrategy[Any]:
        schema = self._doc.deref(schema)
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        for key in ("oneOf", "anyOf"):
            if key in schema:
                return st.one_of(*(self.build(s) for s in schema[key]))
        if "type" not in schema:
            return json_values
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        return st.one_of(*(self._typed(kind, schema) for kind in kinds))

    def _typed(self, kind: str, schema: JsonSchema) -> st.SearchStrategy[Any]:
        if kind == "null":
            return st.none()
        if kind == "boolean":
            return st.booleans()
        if kind == "integer":
            return st.integers(schema.get("minimum"), schema.get("maximum"))
        if kind == "number":
            low, high = schema.get("minimum"), schema.get("maximum")
            return st.floats(low, high, allow_nan=False, allow_infinity=False)
        if kind == "string":
            return self._string(schema)
        if kind == "array":
            low = schema.get("minItems", 0)
            high = max(low, min(schema.get("maxItems", 4), 4))
            return st.lists(self.build(schema.get("items", {})), min_size=low, max_size=high)
        if kind == "object":
            return self._object(schema)
        raise AssertionError(f"the document uses a type this test cannot generate: {kind}")

    def _string(self, schema: JsonSchema) -> st.SearchStrategy[str]:
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        if schema.get("format") == "uri":
            text = provisional.urls()
        elif "pattern" in schema:
            text = st.from_regex(schema["pattern"], fullmatch=True)
        else:
            return st.text(min_size=low, max_size=high if high is not None else max(low, 40))
        return text.filter(lambda s: low <= len(s) and (high is None or len(s) <= high))

    def _object(self, schema: JsonSchema) -> st.SearchStrategy[dict[str, Any]]:
        props: dict[str, JsonSchema] = schema.get("properties", {})
        required = set(schema.get("required", []))
        known = st.fixed_dictionaries(
            {k: self.build(v) for k, v in props.items() if k in required},
            optional={k: self.build(v) for k, v in props.items() if k not in required},
        )
        extra = schema.get("additionalProperties", True)
        if extra is False:
            return known
        names = self._string({"type": "string", **schema.get("propertyNames", {})})
        values = json_values if extra is True else self.build(extra)
        extras = st.dictionaries(names.filter(lambda n: n not in props), values, max_size=3)
        most = schema.get("maxProperties", len(props) + 3)
        return st.builds(lambda e, k: {**e, **k}, extras, known).filter(lambda d: len(d) <= most)


# --- requests, and what the stack handed out for later requests to reuse --------------------


@dataclass(frozen=True)
class Call:
    method: str
    template: str
    path_params: dict[str, str] | Known
    query: tuple[tuple[str, str | Known], ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes | None

    def raw_path(self, pools: Pools) -> str:
        params = self.path_params
        if isinstance(params, Known):
            namespace, run_id = pools.run_for(params) or (pools.namespaces[0], "1")
            params = {"namespace": namespace, "run_id": run_id}
        values = params
        return re.sub(r"\{(\w+)\}", lambda m: quote(values[m[1]], safe=""), self.template)

    def query_string(self, pools: Pools) -> str:
        pairs = []
        for name, value in self.query:
            if isinstance(value, Known):
                value = pools.pick(value) or "Ym9ndXM"
            pairs.append(f"{quote(name, safe='')}={quote(value, safe='')}")
        return "&".join(pairs)


# --- strategies -----------------------------------------------------------------------------


runnable_submissions = st.fixed_dictionaries(
    # Specs the emulator runs to an outcome, so runs move through the ledger and the poller.
    {"spec": st.builds(spec, st.text(max_size=16), st.sampled_from(sorted(OUTCOMES)), st.just(1))},
    optional={
        "labels": st.dictionaries(
            st.sampled_from(["team", "env", "app.kubernetes.io/name"]),
            st.text(max_size=20),
            max_size=3,
        ),
        "callback_url": st.just("https://hooks.example.com/runs"),
    },
)


@st.composite
def broken(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A valid submission with one thing wrong: a field missing, unknown, or of another type."""
    body = dict(draw(valid))
    key = draw(st.sampled_from(["spec", "labels", "callback_url", "extra"]))
    if draw(st.booleans()):
        body.pop(key, None)
    else:
        body[key] = draw(json_values)
    return body


def bodies(doc: Document, op: Operation, max_bytes: int) -> st.SearchStrategy[bytes | None]:
    if op.body_schema is None:
        # Bodies where none is documented: the gateway must ignore or refuse them, not fail.
        return weighted((4, st.none()), (1, st.binary(max_size=64)))
    documented = doc.strategy(op.body_schema)
    return weighted(
        (6, runnable_submissions.map(as_json)),
        (2, documented.map(as_json)),
        (2, broken(runnable_submissions | documented).map(as_json)),
        (1, json_values.map(as_json)),
        (1, st.binary(max_size=200)),
        (1, st.none()),
        (1, st.just(b" " * (max_bytes + 1))),
    )


def path_params(
    doc: Document, op: Operation, namespaces: list[str]
) -> st.SearchStrategy[dict[str, str] | Known]:
    params: dict[str, st.SearchStrategy[str]] = {}
    for param in op.params("path"):
        documented = doc.strategy(param["schema"]).map(str)
        choices = [(2, documented), (1, noise_text)]
        if param["name"] == "namespace":
            # Mostly the stack's own namespaces (PAT and OAuth), so requests reach Databricks.
            choices.insert(0, (12, st.sampled_from(namespaces)))
        params[param["name"]] = weighted(*choices)
    by_value = st.fixed_dictionaries(params)
    if "run_id" not in params:
        return by_value
    known = st.builds(Known, st.sampled_from(["run", "run", "foreign-run"]), st.integers(0, 10_000))
    return weighted((3, known), (2, by_value))


def queries(doc: Document, op: Operation) -> st.SearchStrategy[tuple[tuple[str, Any], ...]]:
    pieces: list[st.SearchStrategy[list[tuple[str, Any]]]] = []
    for param in op.params("query"):
        name, schema = param["name"], doc.deref(param["schema"])
        if schema.get("type") == "array":
            # style=form, explode=true: one pair per item; states from the RunState enum too.
            item = doc.strategy(schema["items"]) | doc.strategy(
                {"$ref": "#/components/schemas/RunState"}
            )
            values = st.lists(item, max_size=3).map(lambda vs, n=name: [(n, v) for v in vs])
        else:
            value = doc.strategy(schema).map(str)
            if name == "cursor":
                value = weighted(
                    (2, st.builds(Known, st.just("cursor"), st.integers())),
                    (1, value),
                    (1, st.sampled_from(OVERFLOWING_CURSORS)),
                )
            values = value.map(lambda v, n=name: [(n, v)])
        pieces.append(st.just([]) | values)
    documented = st.tuples(*pieces).map(lambda ps: [pair for piece in ps for pair in piece])
    noise = st.lists(st.tuples(st.text(max_size=8), st.text(max_size=16)), max_size=3)
    return weighted((2, st.just([])), (3, documented), (1, noise)).map(tuple)


def headers(
    doc: Document, op: Operation, callers: Callers
) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    request_id = doc.deref(doc.raw["components"]["headers"]["RequestId"])["schema"]
    groups: list[st.SearchStrategy[list[tuple[str, str]]]] = [
        callers.headers(),
        weighted(
            (2, st.just([])),
            (2, doc.strategy(request_id).map(lambda v: [("X-Request-Id", v)])),
            (1, header_text.map(lambda v: [("X-Request-Id", v)])),
        ),
        weighted(
            (2, st.just([("Content-Type", "application/json")])),
            (1, st.just([])),
            (1, header_text.map(lambda v: [("Content-Type", v)])),
        ),
    ]
    for param in op.params("header"):
        name = param["name"]
        # A small pool of keys as well, so replays (200) and conflicts (409) happen.
        one = weighted(
            (3, st.sampled_from(["nightly-1", "nightly-2", "nightly-3"])),
            (1, doc.strategy(param["schema"])),
            (1, header_text),
        )
        groups.append(
            weighted(
                (3, st.just([])),
                (4, one.map(lambda v, n=name: [(n, v)])),
                (
                    1,
                    st.lists(one, min_size=2, max_size=2).map(
                        lambda vs, n=name: [(n, v) for v in vs]
                    ),
                ),
            )
        )
    return st.tuples(*groups).map(lambda gs: tuple(h for g in gs for h in g))


def calls(
    doc: Document, namespaces: list[str], max_bytes: int, callers: Callers
) -> st.SearchStrategy[Call]:
    routed = []
    for op in doc.operations:
        call = st.builds(
            Call,
            st.just(op.method),
            st.just(op.template),
            path_params(doc, op, namespaces),
            queries(doc, op),
            headers(doc, op, callers),
            bodies(doc, op, max_bytes),
        )
        # Submissions most, run routes next: they exercise the ledger and Databricks.
        routed.append((4 if op.body_schema else 2 if op.template.startswith("/v1/") else 1, call))
    templates = sorted({op.template for op in doc.operations})
    nowhere = st.lists(noise_text, min_size=1, max_size=5).map(
        lambda parts: "/" + "/".join(quote(p, safe="") for p in parts)
    )
    stray = st.builds(
        Call,
        st.sampled_from(STRAY_METHODS),
        st.sampled_from(templates) | nowhere,
        st.fixed_dictionaries({"namespace": st.sampled_from(namespaces), "run_id": st.just("1")}),
        st.just(()),
        callers.headers().map(tuple),
        st.none() | st.binary(max_size=32),
    )
    return weighted(*routed, (3, stray))


# --- sending and checking -------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    method: str
    raw_path: str
    sent_headers: tuple[tuple[str, str], ...]
    status: int
    media_type: str
    headers: CIMultiDict[str]
    body: bytes

    def __str__(self) -> str:
        return f"{self.method} {self.raw_path} -> {self.status}: {self.body[:500]!r}"


def check(doc: Document, answer: Answer) -> None:
    """The answer is one the document promises for this request."""
    assert answer.status < 500, str(answer)
    request_id = answer.headers.get("X-Request-Id", "")
    assert SANE_REQUEST_ID.match(request_id), str(answer)
    given_ids = [v.strip() for k, v in answer.sent_headers if k == "X-Request-Id"]
    if given_ids and SANE_REQUEST_ID.match(given_ids[0]):
        assert request_id == given_ids[0], str(answer)
    routed = doc.routed(answer.raw_path)
    operation = next((op for op in routed if op.method == answer.method), None)
    if operation is None:
        # The document's own promise: no route is a 404, another method a 405 with Allow.
        assert answer.status == (405 if routed else 404), str(answer)
        assert not routed or answer.headers.get("Allow"), str(answer)
        check_problem(doc, answer, doc.raw["components"]["schemas"]["Problem"])
        return
    response = operation.responses.get(str(answer.status))
    assert response is not None, f"undocumented status for {operation.template}: {answer}"
    for name, header in response.get("headers", {}).items():
        if name in answer.headers:
            value: Any = answer.headers[name]
            schema = doc.deref(header)["schema"]
            value = int(value) if schema.get("type") == "integer" else value
            assert not doc.errors(schema, value), f"header {name}: {answer}"
    content = response.get("content", {})
    assert answer.media_type in content, f"undocumented media type {answer.media_type}: {answer}"
    schema = content[answer.media_type]["schema"]
    if answer.status >= 400:
        check_problem(doc, answer, schema)
    elif answer.media_type.endswith("json"):
        errors = doc.errors(schema, json.loads(answer.body))
        assert not errors, (errors, str(answer))


def check_problem(doc: Document, answer: Answer, schema: JsonSchema) -> None:
    assert answer.media_type == PROBLEM, str(answer)
    problem = json.loads(answer.body)
    errors = doc.errors(schema, problem)
    assert not errors, (errors, str(answer))
    assert problem["status"] == answer.status, str(answer)
    assert problem["request_id"] == answer.headers["X-Request-Id"], str(answer)
    assert problem["instance"] == unquote(answer.raw_path), str(answer)


def learn(pools: Pools, call: Call, answer: Answer) -> None:
    """Remember runs and cursors the stack handed out, for later requests to reuse."""
    pools.sent += 1
    pools.statuses[answer.status] += 1
    if answer.status >= 300 or not answer.media_type.endswith("json"):
        return
    payload = json.loads(answer.body)
    if call.method == "POST" and call.template.endswith("/runs") and answer.status != 200:
        pools.runs.append((payload["namespace"], str(payload["id"])))
        pools.created[payload["namespace"]] += 1
    elif isinstance(payload, dict) and payload.get("next_cursor"):
        pools.cursors.append(payload["next_cursor"])


async def send(
    session: aiohttp.ClientSession,
    base: str,
    doc: Document,
    pools: Pools,
    callers: Callers,
    call: Call,
) -> None:
    # Another tenant's run must be as unknown as a run never created (once there are runs),
    # to a caller who may act in both namespaces.
    foreign = isinstance(call.path_params, Known) and call.path_params.pool == "foreign-run"
    foreign = foreign and bool(pools.runs) and callers.admits_everywhere(call.headers)
    raw_path, query = call.raw_path(pools), call.query_string(pools)
    # encoded=True: the path goes out exactly as generated, '..' and '%2F' included.
    url = yarl.URL(base + raw_path + (f"?{query}" if query else ""), encoded=True)
    async with session.request(
        call.method, url, headers=list(call.headers), data=call.body, allow_redirects=False
    ) as resp:
        answer = Answer(
            method=call.method,
            raw_path=raw_path,
            sent_headers=call.headers,
            status=resp.status,
            media_type=resp.content_type,
            headers=resp.headers.copy(),
            body=await resp.read(),
        )
    learn(pools, call, answer)
    check(doc, answer)
    pools.foreign_checked += foreign
    assert not foreign or answer.status == 404, f"another tenant's run: {answer}"


Batch = tuple[list[Call], list[CompatCall]]


@pytest.mark.e2e
# 10,000+ requests through the whole stack: about 65 s on a shared 2-core box.
@pytest.mark.timeout(400)
async def test_generated_requests_get_documented_answers_and_never_a_5xx(
    gateway_stack_factory: StackFactory,
) -> None:
    """Over 5,000 requests generated from /openapi.json and over 5,000 to the Databricks
    facade, to one stack, as API-key callers and as attackers: no 5xx, only documented
    answers, and another namespace's run is no run at all."""
    callers = Callers(tuple(f"team-{i:02d}" for i in range(4)))
    stack = await gateway_stack_factory(namespaces=4, gateway={"callers": callers.section()})
    async with stack.session.get(stack.url + "/openapi.json") as resp:
        doc = Document(await resp.json())
    namespaces = sorted(stack.settings.tenants.namespaces)
    assert tuple(namespaces) == callers.namespaces
    one_call = calls(doc, namespaces, stack.settings.server.max_body_bytes, callers)
    batches = st.tuples(
        st.lists(one_call, min_size=BATCH_SIZES[0], max_size=BATCH_SIZES[1]),
        st.lists(
            compat_calls(callers, namespaces), min_size=BATCH_SIZES[0], max_size=BATCH_SIZES[1]
        ),
    )
    pools = Pools(namespaces)
    loop = asyncio.get_running_loop()

    async def send_batch(batch: Batch) -> None:
        v1, compat = batch
        await asyncio.gather(
            *(send(stack.session, stack.url, doc, pools, callers, c) for c in v1),
            *(send_compat(stack.session, stack.url, pools, callers, c) for c in compat),
        )

    def run_examples() -> None:
        # No shrinking and no example database: the stack is stateful, so a replayed example
        # is not the same request; a failure names the request and the answer instead.
        @settings(
            max_examples=BATCHES,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(batches)
        def send_each(batch: Batch) -> None:
            asyncio.run_coroutine_threadsafe(send_batch(batch), loop).result(timeout=30)

        send_each()

    started = time.monotonic()
    await asyncio.to_thread(run_examples)
    elapsed = time.monotonic() - started
    print(
        f"{pools.sent} /v1 and {pools.compat_sent} compat requests in {elapsed:.1f} s: "
        f"/v1 {sorted(pools.statuses.items())}, compat {sorted(pools.compat_statuses.items())}, "
        f"{pools.foreign_checked} asked for another namespace's run"
    )

    assert pools.sent >= MIN_REQUESTS
    assert pools.compat_sent >= MIN_REQUESTS
    # Not vacuous: every namespace, PAT and OAuth alike, had runs created through both APIs
    # that reached Databricks as its own principal, and the facade's runs/list paged.
    principals = {run["principal"] for run in stack.emulator.runs()}
    for namespace in namespaces:
        assert pools.created[namespace] > 0, pools.created
        assert pools.compat_created[namespace] > 0, pools.compat_created
        assert stack.principal(namespace) in principals
    assert pools.page_tokens, "runs/list never handed out a page token"
    assert pools.foreign_checked > 0
    # Every endpoint of the facade succeeded sometimes: the refusals are not all there is.
    succeeded = {endpoint for endpoint, status in pools.compat_statuses if status == 200}
    assert succeeded == {"submit", "get", "get-output", "list", "cancel"}, pools.compat_statuses
