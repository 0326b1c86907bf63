"""Write docs/api.md, the API reference, from gateway/api/openapi.yaml (the document the
gateway serves at /openapi.json).

    .venv/bin/python -m scripts.api_reference          # rewrite docs/api.md
    .venv/bin/python -m scripts.api_reference --check  # exit 1 if docs/api.md is out of date

The output depends on the OpenAPI document alone (no dates, no versions of tools), so the test
in tests/docs/test_api_reference.py can compare it byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OPENAPI = ROOT / "gateway" / "api" / "openapi.yaml"
TARGET = ROOT / "docs" / "api.md"
REGENERATE = ".venv/bin/python -m scripts.api_reference"
METHODS = ("get", "put", "post", "delete", "patch")
# Schema keywords shown after a field's description, in this order.
CONSTRAINTS = (
    "format",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "default",
)

Spec = Mapping[str, Any]


def _ref_name(ref: str) -> tuple[str, str]:
    """``#/components/schemas/Run`` -> (``schemas``, ``Run``)."""
    parts = ref.split("/")
    return parts[-2], parts[-1]


def _anchor(kind: str, name: str) -> str:
    return f"{kind}-{name.lower()}"


def _link(ref: str) -> str:
    kind, name = _ref_name(ref)
    return f"[{name}](#{_anchor(kind, name)})"


def _cell(text: object) -> str:
    """One table cell: a single line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def type_of(schema: Spec) -> str:
    """A schema as a short phrase: ``string``, ``array of [Run](#schemas-run)``, ..."""
    if "$ref" in schema:
        return _link(schema["$ref"])
    for combinator, word in (("oneOf", " or "), ("anyOf", " or "), ("allOf", " and ")):
        if combinator in schema:
            # An allOf part that only adds ``required`` is said under "Required here".
            parts = [p for p in schema[combinator] if set(p) - {"required", "description"}]
            return word.join(type_of(part) for part in parts)
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    kinds = schema.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    shown = []
    for kind in kinds:
        if kind == "array" and isinstance(schema.get("items"), Mapping):
            shown.append(f"array of {type_of(schema['items'])}")
        elif kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
            shown.append(f"map of {type_of(schema['additionalProperties'])}")
        elif kind == "object" and schema.get("properties"):
            names = ", ".join(f"`{name}`" for name in schema["properties"])
            shown.append(f"object with {names}")
        else:
            shown.append(str(kind))
    return " or ".join(shown)


def _constraints(schema: Spec) -> str:
    found = [f"{key} `{schema[key]}`" for key in CONSTRAINTS if key in schema]
    return f" ({', '.join(found)})" if found else ""


def _fields(schema: Spec) -> list[str]:
    properties = schema.get("properties") or {}
    if not properties:
        return []
    required = set(schema.get("required") or ())
    rows = ["| field | type | required | description |", "|---|---|---|---|"]
    for name, field in properties.items():
        text = _cell(field.get("description", "")) + _constraints(field)
        flag = "yes" if name in required else ""
        rows.append(f"| `{name}` | {_cell(type_of(field))} | {flag} | {text.strip()} |")
    if schema.get("additionalProperties") is False:
        rows.append("")
        rows.append("No other fields are accepted.")
    return rows


def _parameters(spec: Spec, path_item: Spec, operation: Spec) -> list[str]:
    found = [*(path_item.get("parameters") or ()), *(operation.get("parameters") or ())]
    if not found:
        return []
    rows = ["| name | in | required | type | description |", "|---|---|---|---|---|"]
    for parameter in found:
        if "$ref" in parameter:
            parameter = spec["components"]["parameters"][_ref_name(parameter["$ref"])[1]]
        schema = parameter.get("schema") or {}
        text = _cell(parameter.get("description", "")) + _constraints(schema)
        flag = "yes" if parameter.get("required") else ""
        rows.append(
            f"| `{parameter['name']}` | {parameter['in']} | {flag} | "
            f"{_cell(type_of(schema))} | {text.strip()} |"
        )
    return ["**Parameters**", "", *rows, ""]


def _body_of(content: Spec | None) -> str:
    if not content:
        return ""
    return "; ".join(f"{type_of(c.get('schema') or {})} (`{t}`)" for t, c in content.items())


def _responses(operation: Spec) -> list[str]:
    rows = ["| status | meaning | body |", "|---|---|---|"]
    for status, response in operation.get("responses", {}).items():
        if "$ref" in response:
            rows.append(f"| {status} | {_link(response['$ref'])} | problem+json |")
        else:
            text = _cell(response.get("description", ""))
            rows.append(f"| {status} | {text} | {_cell(_body_of(response.get('content')))} |")
    return ["**Responses**", "", *rows, ""]


def _operation(spec: Spec, path: str, method: str, path_item: Spec) -> list[str]:
    operation = path_item[method]
    lines = [f"#### `{method.upper()} {path}`", ""]
    if operation.get("summary"):
        lines += [f"{operation['summary']} (`{operation.get('operationId', '')}`).", ""]
    if operation.get("security") == []:
        lines += ["No caller credential needed.", ""]
    if operation.get("description"):
        lines += [operation["description"].strip(), ""]
    lines += _parameters(spec, path_item, operation)
    body = operation.get("requestBody")
    if body:
        required = " (required)" if body.get("required") else ""
        lines += [f"**Request body**{required}: {_body_of(body.get('content'))}", ""]
    return lines + _responses(operation)


def _operations(spec: Spec) -> Iterable[tuple[str, str, str, Spec]]:
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                tags = item[method].get("tags") or ["other"]
                yield tags[0], path, method, item


def _endpoints(spec: Spec) -> list[str]:
    lines = ["## Endpoints", ""]
    tags = [tag["name"] for tag in spec.get("tags", [])]
    described = {tag["name"]: tag.get("description", "") for tag in spec.get("tags", [])}
    found = list(_operations(spec))
    for tag in [*tags, *sorted({t for t, *_ in found} - set(tags))]:
        mine = [(path, method, item) for t, path, method, item in found if t == tag]
        if not mine:
            continue
        lines += [f"### {tag}", ""]
        if described.get(tag):
            lines += [described[tag], ""]
        lines += [f"- [`{m.upper()} {p}`](#{_op_anchor(m, p)})" for p, m, _ in mine] + [""]
        for path, method, item in mine:
            lines += _operation(spec, path, method, item)
    return lines


def _op_anchor(method: str, path: str) -> str:
    # GitHub's heading anchor: lower case, spaces to dashes, punctuation but - and _ dropped.
    text = f"{method} {path}".lower()
    return "".join(c for c in text.replace(" ", "-") if c.isalnum() or c in "-_")


def _components(spec: Spec, kind: str, title: str) -> list[str]:
    items = spec.get("components", {}).get(kind) or {}
    lines = [f"## {title}", ""]
    for name, item in items.items():
        lines += [f'<a id="{_anchor(kind, name)}"></a>', "", f"### {name}", ""]
        if item.get("description"):
            lines += [item["description"].strip(), ""]
        if kind == "responses":
            headers = ", ".join(f"`{h}`" for h in item.get("headers") or {})
            lines += [f"Body: {_body_of(item.get('content'))}. Headers: {headers}.", ""]
            continue
        if "properties" not in item:
            lines += [f"Type: {type_of(item)}{_constraints(item)}.", ""]
        for part in item.get("allOf") or ():
            if "required" in part:
                lines += ["Required here: " + ", ".join(f"`{r}`" for r in part["required"]), ""]
        fields = _fields(item)
        lines += [*fields, ""] if fields else []
    return lines


def _security(spec: Spec) -> list[str]:
    schemes = spec.get("components", {}).get("securitySchemes") or {}
    lines = ["## Caller credentials", ""]
    for name, scheme in schemes.items():
        how = (
            f"`Authorization: Bearer ...` ({scheme.get('scheme')})"
            if scheme.get("type") == "http"
            else f"header `{scheme.get('name')}`"
        )
        lines.append(f"- **{name}**: {how}. {_cell(scheme.get('description', ''))}")
    return [*lines, ""]


def render(spec: Spec) -> str:
    """The reference as Markdown."""
    info = spec["info"]
    lines = [
        "<!-- Generated from gateway/api/openapi.yaml by "
        f"`{REGENERATE}`: edit the OpenAPI document, then run it. -->",
        "",
        f"# {info['title']} API reference (version {info['version']})",
        "",
        info.get("summary", ""),
        "",
        info.get("description", "").strip(),
        "",
        "The same document is served as JSON at `GET /openapi.json`.",
        "",
        *_security(spec),
        *_endpoints(spec),
        *_components(spec, "schemas", "Schemas"),
        *_components(spec, "responses", "Error responses"),
    ]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip("\n") + "\n"


def load(path: Path = OPENAPI) -> Spec:
    loaded: Spec = yaml.safe_load(path.read_text("utf-8"))
    return loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api.md is stale")
    args = parser.parse_args(argv)
    text = render(load())
    if args.check:
        current = TARGET.read_text("utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
