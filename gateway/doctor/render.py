"""The tenant doctor's report and the tenant list as text for people, pure.

Made from the JSON views (``Report.view()``, ``Tenant.view()``), so the command line renders
what the gateway sent whatever its version. Every line passes through the log redaction of
known secrets, as everything the CLI prints does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.logs import redact_text

MARKS = {"ok": "ok  ", "failed": "FAIL", "skipped": "--  "}
RULE_MARKS = {"chosen": "*", "refused": "!", "no match": "-", "not reached": " "}


def format_report(view: Mapping[str, Any]) -> str:
    steps: Sequence[Mapping[str, Any]] = view.get("steps", [])
    lines = [f"namespace {view.get('namespace')}"]
    for step in steps:
        mark = MARKS.get(str(step.get("outcome")), "?   ")
        lines.append(f"  [{mark}] {step.get('title')}: {step.get('detail')}")
        for rule in (step.get("facts") or {}).get("rules", []):
            lines.append(
                f"           {RULE_MARKS.get(rule['outcome'], '?')} {rule['rule']}: "
                f"{rule['outcome']}: {rule['detail']}"
            )
        if step.get("outcome") == "failed":
            lines.append(f"           object: {step.get('object')}")
            lines.append(f"           fix:    {step.get('fix')}")
    failed = [s for s in steps if s.get("outcome") == "failed"]
    if failed:
        lines.append(f"{len(failed)} step(s) failed; the first: {failed[0].get('title')}")
    else:
        lines.append("every step passed")
    return "\n".join(redact_text(line) for line in lines)


def format_tenants(tenants: Sequence[Mapping[str, Any]]) -> str:
    if not tenants:
        return "no configured or discovered namespace"
    width = max(len(str(t.get("namespace"))) for t in tenants)
    lines = []
    for tenant in tenants:
        state = str(tenant.get("state"))
        what = tenant.get("kind") or "-"
        tail = f"{tenant.get('origin')}" if state == "ok" else f"{tenant.get('reason')}"
        lines.append(
            f"{tenant.get('namespace')!s:<{width}}  {state:<7}  {what:<26}  "
            f"({', '.join(tenant.get('known_as', []))}) {tail}"
        )
    return "\n".join(redact_text(line) for line in lines)
