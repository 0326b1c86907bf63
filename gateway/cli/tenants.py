"""``lakegate tenants check NS | list``: the tenant doctor from a shell.

``check`` prints each step of the namespace's path (``GET /v1/namespaces/{ns}/identity``)
with its outcome, and for a failed one the object and the fix; ``list`` prints every
namespace the caller may act for with its identity kind and state (``GET /v1/namespaces``).
``--json`` (or ``-o json``) prints the gateway's JSON as it is.

Exit codes: 0 every step passed (``list``: answered); 1 a step failed; otherwise those of the
other client commands (2 a usage error or a 4xx answer, 3 a 5xx or no answer).
"""

from __future__ import annotations

import argparse
import json

from gateway.cli.client import LakegateClient
from gateway.cli.commands import EXIT_OK, EXIT_RUN_FAILED, _common, _execute
from gateway.cli.invocation import Progress
from gateway.doctor.render import format_report, format_tenants
from gateway.logs import redact_text

# ``list`` names no namespace; the client commands' target wants one.
_ANY_NAMESPACE = "-"


def _as_json(progress: Progress, args: argparse.Namespace) -> bool:
    return bool(args.json) or progress.target.output == "json"


async def _check_flow(client: LakegateClient, progress: Progress, args: argparse.Namespace) -> int:
    report = await client.identity_report(progress.target.namespace)
    if _as_json(progress, args):
        print(redact_text(json.dumps(report, indent=2)))
    else:
        print(format_report(report))
    return EXIT_OK if report.get("healthy") else EXIT_RUN_FAILED


async def _list_flow(client: LakegateClient, progress: Progress, args: argparse.Namespace) -> int:
    tenants = await client.namespaces()
    if _as_json(progress, args):
        print(redact_text(json.dumps({"namespaces": tenants}, indent=2)))
    else:
        print(format_tenants(tenants))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    args.namespace = args.check_namespace
    return _execute(args, _check_flow)


def _list(args: argparse.Namespace) -> int:
    args.namespace = _ANY_NAMESPACE
    return _execute(args, _list_flow)


def add_tenant_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``tenants check NS`` and ``tenants list`` on the ``lakegate`` parser."""
    common = _common()
    tenants = sub.add_parser("tenants", help="the tenant doctor: check a namespace's path")
    verbs = tenants.add_subparsers(dest="tenants_command", required=True)
    check = verbs.add_parser(
        "check", parents=[common], help="walk a namespace's path and say what is wrong"
    )
    check.add_argument("check_namespace", metavar="NAMESPACE")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(handler=_check)
    listing = verbs.add_parser(
        "list", parents=[common], help="every namespace with its identity kind and state"
    )
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(handler=_list)
