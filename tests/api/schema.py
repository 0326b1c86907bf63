"""Check response bodies against the schemas of the OpenAPI document the app serves."""

from __future__ import annotations

from typing import Any

from openapi_schema_validator import OAS31Validator, oas31_format_checker

from gateway.api.ops import OPENAPI


def assert_matches(schema: str, instance: Any) -> None:
    """Fail with every violation if ``instance`` does not match components.schemas[schema]."""
    # '#/components/...' refs resolve against this wrapper because it carries the document's
    # components; the OpenAPI 3.1 dialect also checks formats such as int64 and date-time.
    validator = OAS31Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": OPENAPI["components"]},
        format_checker=oas31_format_checker,
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, errors


def assert_problem(body: Any, status: int, kind: str | None = None) -> None:
    """A problem+json body with the required fields, this status and (optionally) this type."""
    assert_matches("Problem", body)
    assert body["status"] == status
    if kind is not None:
        assert body["type"] == f"https://lakegate.dev/problems/{kind}"
