"""How the Jobs API reads a request's parameters: the query string first, then a JSON body.

Pure, no I/O. Databricks accepts a GET's parameters as a JSON object body too: Airflow's async
hook sends ``GET runs/get`` with ``{"run_id": N}`` as its body and no query string (reference
section 9). A parameter in the query string wins over the same one in the body; a body that
is not a JSON object counts as no body, so a GET without its ``run_id`` gets the same 400
however it was sent. Ids are int64, which the service also reads from a JSON string of
digits (the legacy CLI and flytekit send ``{"run_id": "123"}``); booleans arrive as JSON
booleans or as ``true``/``false`` in any case (Airflow's query strings say ``True``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.emulator.databricks.validation import Invalid, parse_json_object

_INTEGER = re.compile(r"[+-]?[0-9]+")


class BadParam(Exception):
    """A request the Jobs API refuses for its parameters: a 400 with this code and message."""

    def __init__(self, message: str, error_code: str = "INVALID_PARAMETER_VALUE") -> None:
        super().__init__(message)
        self.error_code = error_code


@dataclass(frozen=True)
class Params:
    """One request's parameters. ``noun`` names them in messages ("parameter", "field")."""

    query: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)
    noun: str = "parameter"

    def raw(self, name: str) -> Any:
        """The query string's value, else the body's; None when neither gives one."""
        value = self.query.get(name)
        if value is not None and value != "":
            return value
        return self.body.get(name)

    def integer(self, name: str) -> int | None:
        value = self.raw(name)
        return None if value is None else self._as_integer(name, value)

    def required_integer(self, name: str) -> int:
        value = self.raw(name)
        if value is None:
            raise BadParam(f"Missing required field: {name}")
        return self._as_integer(name, value)

    def _as_integer(self, name: str, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INTEGER.fullmatch(value):
            return int(value)
        raise BadParam(
            f"Invalid value for {self.noun} {name}: expected an integer, got {_shown(value)}"
        )

    def boolean(self, name: str) -> bool:
        value = self.raw(name)
        if value is None or value == "" or isinstance(value, bool):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise BadParam(
            f"Invalid value for {self.noun} {name}: expected true or false, got {_shown(value)}"
        )

    def string(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None or isinstance(value, str):
            return value
        raise BadParam(f"Invalid value for {self.noun} {name}: expected a string")


def post_params(text: str) -> Params:
    """A POST's body as parameters; raises the MALFORMED_REQUEST refusal if it is no object."""
    body = parse_json_object(text)
    if isinstance(body, Invalid):
        raise BadParam(body.message, body.error_code)
    return Params(body=body, noun="field")


def get_params(query: Mapping[str, str], text: str) -> Params:
    """A GET's query string, then its body if that is a JSON object (nulls dropped)."""
    body = parse_json_object(text)
    return Params(query, {} if isinstance(body, Invalid) else body)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
