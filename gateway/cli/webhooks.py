"""``lakegate webhooks dead | redeliver -n NS``: the dead webhook events of a namespace.

``dead`` lists them (newest first; ``--all`` follows every page); ``redeliver`` sends the
given ids again, or every dead event with ``--all``, each with its same webhook-id.
"""

from __future__ import annotations

import argparse
import json
from functools import partial

from gateway.cli.client import LakegateClient
from gateway.cli.commands import EXIT_OK, EXIT_USAGE, _common, _err, _execute
from gateway.cli.invocation import Progress

PAGE = 100


def _row(event: dict[str, object]) -> str:
    status = event.get("last_status") or "-"
    return (
        f"{event.get('id')!s:>8}  run {event.get('run_id')!s:<8} {event.get('type')!s:<18} "
        f"tries {event.get('attempts')!s:<3} last {status!s:<4} {event.get('dead_at')}  "
        f"{event.get('last_error')}"
    )


async def _dead_flow(client: LakegateClient, progress: Progress, args: argparse.Namespace) -> int:
    namespace = progress.target.namespace
    events: list[dict[str, object]] = []
    before: int | None = None
    while True:
        page = await client.dead_webhooks(namespace, limit=args.limit or PAGE, before=before)
        events.extend(page["events"])
        before = page.get("next_before")
        if before is None or not args.all:
            break
    if progress.target.output == "json":
        print(json.dumps({"events": events, "next_before": before}, indent=2))
    elif events:
        print("\n".join(_row(e) for e in events))
    else:
        _err(f"no dead webhook events in namespace {namespace}")
    if before is not None and not args.all:
        _err("more dead events exist: pass --all to list them all")
    return EXIT_OK


async def _redeliver_flow(
    client: LakegateClient, progress: Progress, args: argparse.Namespace
) -> int:
    if bool(args.ids) == bool(args.all):
        _err("error: name the dead event ids to redeliver, or pass --all (not both)")
        return EXIT_USAGE
    done = await client.redeliver_webhooks(progress.target.namespace, args.ids or None)
    if progress.target.output == "json":
        print(json.dumps({"redelivered": done}))
    else:
        print(f"redelivering {len(done)} event(s): {' '.join(map(str, done)) or '-'}")
    return EXIT_OK


def add_webhook_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``webhooks dead`` and ``webhooks redeliver`` on the ``lakegate`` parser."""
    common = _common()
    webhooks = sub.add_parser("webhooks", help="dead webhook events and their redelivery")
    verbs = webhooks.add_subparsers(dest="webhooks_command", required=True)
    dead = verbs.add_parser("dead", parents=[common], help="list the dead webhook events")
    dead.add_argument("--limit", type=int, help="events per page")
    dead.add_argument("--all", action="store_true", help="follow every page")
    dead.set_defaults(handler=partial(_execute, flow=_dead_flow))
    again = verbs.add_parser(
        "redeliver", parents=[common], help="send dead events again, same webhook-id"
    )
    again.add_argument("ids", nargs="*", type=int, metavar="ID", help="dead event ids")
    again.add_argument("--all", action="store_true", help="every dead event of the namespace")
    again.set_defaults(handler=partial(_execute, flow=_redeliver_flow))
