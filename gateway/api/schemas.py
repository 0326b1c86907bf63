"""What a request may contain, and the translation of every refusal into ``InvalidRequest``.

Pure functions over decoded values: the handlers hand in bytes, strings and query multidicts
and get back domain values or an error that names the field and says how to fix it. Caller
input is never echoed back whole in a message: it may be long, or hold something private.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, NoReturn
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.api.jsonbody import depth, read_json
from gateway.errors import InvalidRequest
from gateway.model import RunState
from gateway.runs.specs import shape_problem, without_nulls
from gateway.runs.types import SubmitRequest
from gateway.settings import NAMESPACE_RE, OBJECT_NAME_RE

MAX_LABELS = 32
MAX_LABEL_VALUE = 256
MAX_URL = 2048
MAX_SPEC_DEPTH = 32
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_CURSOR = 1024
INT64_MAX = 2**63 - 1
LIST_PARAMETERS = frozenset({"state", "limit", "cursor"})

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}\Z")
_RUN_ID = re.compile(r"^[1-9][0-9]{0,18}\Z")
_LABEL_KEY_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$"

LabelKey = Annotated[str, StringConstraints(pattern=_LABEL_KEY_PATTERN)]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_LABEL_VALUE)]


class IdentityChoice(BaseModel):
    """Another ServiceAccount or Secret of the request's own namespace to run as."""

    # Python's engine: the name pattern anchors with \Z, which a trailing newline cannot pass.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, regex_engine="python-re")

    service_account: str | None = Field(default=None, pattern=OBJECT_NAME_RE.pattern)
    secret: str | None = Field(default=None, pattern=OBJECT_NAME_RE.pattern)

    @model_validator(mode="after")
    def _one(self) -> IdentityChoice:
        if (self.service_account is None) == (self.secret is None):
            raise ValueError("must name exactly one of 'service_account' or 'secret'")
        return self

    def as_ref(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class SubmitBody(BaseModel):
    """The body of POST /v1/namespaces/{namespace}/runs."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    spec: dict[str, Any]
    callback_url: str | None = None
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=MAX_LABELS)
    identity: IdentityChoice | None = None

    @field_validator("spec")
    @classmethod
    def _spec(cls, spec: dict[str, Any]) -> dict[str, Any]:
        problem = shape_problem(spec)
        if problem is not None:
            raise ValueError(problem)
        # The service fingerprints and forwards the spec; bound its nesting so neither
        # recursion nor Databricks' own limits are the first to object.
        if depth(spec) > MAX_SPEC_DEPTH:
            raise ValueError(f"nests deeper than {MAX_SPEC_DEPTH} levels")
        return spec

    @field_validator("callback_url")
    @classmethod
    def _callback_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if len(url) > MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http or https URL of at most {MAX_URL} characters")
        return url

    def to_request(self) -> SubmitRequest:
        return SubmitRequest(
            spec=self.spec,
            callback_url=self.callback_url,
            labels=self.labels,
            identity=self.identity.as_ref() if self.identity else {},
        )


_MAX_REPORTED = 5
# pydantic names Python types; callers write JSON.
_JSON_TYPES = {
    "dict_type": "a JSON object",
    "string_type": "a string",
    "list_type": "an array",
}


def _short(text: str) -> str:
    return text if len(text) <= 64 else text[:61] + "..."


def _describe(error: Mapping[str, Any]) -> tuple[str, str]:
    """One pydantic error as (dotted field, message a person can act on)."""
    # pydantic marks an invalid dict key with a '[key]' part; the key itself names the field.
    loc = [_short(str(part)) for part in error["loc"] if part != "[key]"]
    field = ".".join(loc) or "body"
    kind = error["type"]
    if kind == "extra_forbidden":
        return field, f"unknown field '{field}'; the body takes spec, callback_url and labels"
    if kind == "missing":
        return field, f"'{field}' is required"
    if loc[:1] == ["labels"] and kind == "string_pattern_mismatch":
        return field, (
            "label keys are 1 to 63 letters, digits, '.', '_', '/' or '-', "
            "starting and ending with a letter or digit"
        )
    if loc[:1] == ["labels"] and kind == "too_long":
        return field, f"at most {MAX_LABELS} labels"
    if kind in _JSON_TYPES:
        return field, f"{field} must be {_JSON_TYPES[kind]}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return field, f"{field}: {message}"


def _refuse(exc: ValidationError) -> NoReturn:
    described = [_describe(e) for e in exc.errors(include_url=False, include_input=False)]
    # A body with thousands of bad labels must not earn a detail of thousands of sentences.
    detail = "; ".join(m for _, m in described[:_MAX_REPORTED])
    if len(described) > _MAX_REPORTED:
        detail += f"; and {len(described) - _MAX_REPORTED} more problems"
    raise InvalidRequest(detail, field=described[0][0]) from exc


def parse_submit(body: bytes) -> SubmitRequest:
    """Decode and validate a submission body."""
    try:
        parsed = read_json(body)
    except (ValueError, RecursionError) as exc:
        # UnicodeDecodeError and JSONDecodeError are both ValueErrors.
        raise InvalidRequest(
            "The request body is not JSON; send a JSON object with 'spec'.", field="body"
        ) from exc
    data = parsed.value
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", field="body")
    where = None if parsed.text_checked else unencodable(data)
    if where is not None:
        raise InvalidRequest(
            f"{where} holds a lone surrogate (an unpaired \\ud800-\\udfff escape), which is "
            "not text; send valid UTF-16 pairs or the character itself.",
            field=where,
        )
    try:
        # A null counts as absent at every depth, in lakegate's fields and in the spec alike.
        cleaned = without_nulls(data) if parsed.may_hold_null else data
        return SubmitBody.model_validate(cleaned).to_request()
    except ValidationError as exc:
        _refuse(exc)


def unencodable(value: Any, path: str = "body") -> str | None:
    """The path of the first key or string that UTF-8 cannot encode (a lone surrogate, which
    JSON's \\u escapes allow), or None; the ledger and Databricks take only real text."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if not _encodes(node):
                return where
        elif isinstance(node, dict):
            for key, child in node.items():
                if not _encodes(key):
                    return where
                stack.append((child, f"{where}.{key}" if where != "body" else key))
        elif isinstance(node, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(node))
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_namespace(value: str) -> str:
    if NAMESPACE_RE.match(value):
        return value
    raise InvalidRequest(
        "The namespace in the path is not a Kubernetes name: 1 to 63 lowercase letters, "
        "digits or '-', starting and ending with a letter or digit.",
        field="namespace",
    )


def parse_run_id(value: str) -> int:
    if _RUN_ID.match(value) and int(value) <= INT64_MAX:
        return int(value)
    raise InvalidRequest(
        f"The run id in the path must be a positive integer of at most {INT64_MAX}.",
        field="run_id",
    )


def parse_idempotency_key(values: list[str]) -> str | None:
    """The Idempotency-Key header's values (all of them, to catch a repeated header)."""
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest(
            "Send one Idempotency-Key header, not several.", field="Idempotency-Key"
        )
    if not _IDEMPOTENCY_KEY.match(values[0]):
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces).",
            field="Idempotency-Key",
        )
    return values[0]


def parse_states(values: list[str]) -> frozenset[RunState] | None:
    """``state`` repeated and/or comma-separated; empty pieces are ignored."""
    pieces = [p.strip() for v in values for p in v.split(",") if p.strip()]
    if not pieces:
        return None
    try:
        return frozenset(RunState(p.upper()) for p in pieces)
    except ValueError as exc:
        raise InvalidRequest(
            f"state must be one or more of {', '.join(s.value for s in RunState)}.",
            field="state",
        ) from exc


def parse_limit(values: list[str]) -> int:
    if not values:
        return DEFAULT_LIMIT
    if len(values) == 1 and values[0].isascii() and values[0].isdigit():
        limit = int(values[0])
        if 1 <= limit <= MAX_LIMIT:
            return limit
    raise InvalidRequest(
        f"limit must be one integer from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).",
        field="limit",
    )


def parse_cursor(values: list[str]) -> str | None:
    if not values:
        return None
    if len(values) == 1 and 0 < len(values[0]) <= MAX_CURSOR:
        return values[0]
    raise InvalidRequest(
        "cursor must be one next_cursor value from a previous page.", field="cursor"
    )


def check_list_parameters(names: set[str]) -> None:
    """Refuse unknown query parameters: a misspelt filter must not silently list everything."""
    unknown = sorted(names - LIST_PARAMETERS)
    if unknown:
        raise InvalidRequest(
            f"Unknown query parameter '{unknown[0][:64]}'; use state, limit and cursor.",
            field=unknown[0][:64],
        )
