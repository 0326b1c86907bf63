"""``lakegate submit | get | cancel | runs | output | quota``: the command line's side of the
REST API.

Everything that can block (the spec file, stdin, the token file, the environment) is read
before the event loop starts (``invocation``); the loop then does HTTP only, through one
``LakegateClient``.
Results go to stdout (a table or JSON) and progress, retries and errors to stderr, so
``-o json`` output can be piped whatever happens on the way.

Exit codes: 0 done (the run SUCCEEDED, with ``--wait``); 1 the run ended in another terminal
state; 2 a usage error or a 4xx answer; 3 a 5xx answer or no answer at all; 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from gateway import logs
from gateway.cli.client import DEFAULT_URL, LakegateClient, Run, is_terminal
from gateway.cli.errors import ApiError, GatewayClientError, GatewayUnreachable
from gateway.cli.invocation import (
    ENV_NAMESPACE,
    ENV_TOKEN,
    ENV_URL,
    Progress,
    Target,
    UsageError,
    submit_body,
    target_of,
)
from gateway.cli.output import StateDisplay, format_run, format_runs
from gateway.cli.quota import quota_flow
from gateway.cli.retry import RetryNotice
from gateway.cli.run_output import output_flow
from gateway.model import RunState

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- running a command ----------------------------------------------------------------------

Flow = Callable[[LakegateClient, Progress, argparse.Namespace], Awaitable[int]]


def _execute(args: argparse.Namespace, flow: Flow) -> int:
    try:
        target = target_of(args)
    except UsageError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    progress = Progress(target)

    def on_retry(notice: RetryNotice) -> None:
        text = (
            f"{notice.error}; retrying in {notice.wait:.1f}s "
            f"(attempt {notice.attempt + 1} of {target.retries + 1})"
        )
        if progress.display is not None:
            progress.display.note(text)
        else:
            _err(text)

    async def main() -> int:
        async with target.client(on_retry) as client:
            return await flow(client, progress, args)

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        _err("interrupted")
        if (behind := progress.left_behind(answered=False)) is not None:
            _err(behind)
        return EXIT_INTERRUPTED
    except GatewayClientError as exc:
        return _report(exc, progress)


def _report(exc: GatewayClientError, progress: Progress) -> int:
    # A gateway may echo what it was sent; nothing printed here may carry a credential.
    if isinstance(exc, ApiError):
        _err(logs.redact_text(f"error: {exc.title} ({exc.status})"))
        if exc.detail:
            _err(logs.redact_text(f"  {exc.detail}"))
        for key, value in exc.extensions.items():
            shown = value if isinstance(value, str) else json.dumps(value)
            _err(logs.redact_text(f"  {key}: {shown}"))
        if exc.request_id:
            _err(f"  request id: {exc.request_id}")
        if exc.status == 401 and progress.target.token is None:
            _err(f"hint: set {ENV_TOKEN} or pass --token-file")
        code = EXIT_UNAVAILABLE if exc.status >= 500 else EXIT_USAGE
    else:
        _err(logs.redact_text(f"error: {exc}"))
        if isinstance(exc, GatewayUnreachable) and exc.connect_failed:
            _err(
                f"hint: is `lakegate serve` or `lakegate demo` running at {exc.url}? "
                f"(set --url or {ENV_URL})"
            )
        code = EXIT_UNAVAILABLE
    # A 4xx is a definite refusal; after a 5xx or no answer the submit may have gone through.
    answered = isinstance(exc, ApiError) and exc.status < 500
    if (behind := progress.left_behind(answered=answered)) is not None:
        _err(behind)
    return code


async def _follow(client: LakegateClient, progress: Progress, run: Run, interval: float) -> Run:
    """Poll until the run ends, showing its state on stderr."""
    progress.display = display = StateDisplay(sys.stderr, live=sys.stderr.isatty())
    display.update(run)
    try:
        async with asyncio.TaskGroup() as group:
            ticker = group.create_task(_tick(display)) if display.live else None
            async for polled in client.watch(
                progress.target.namespace, run["id"], poll_interval=interval
            ):
                progress.run = run = polled
                display.update(run)
            if ticker is not None:
                ticker.cancel()
    finally:
        display.close()
        progress.display = None
    return run


async def _tick(display: StateDisplay) -> None:
    # Between polls the elapsed time keeps moving on a terminal.
    while True:
        await asyncio.sleep(1.0)
        display.redraw()


def _print_run(target: Target, run: Run, *, history: bool = False) -> None:
    if target.output == "json":
        shown = dict(run) if history else {k: v for k, v in run.items() if k != "history"}
        print(json.dumps(shown, indent=2))
    else:
        print(format_run(run, history=history))


def _ended(run: Run, *, wanted: RunState) -> int:
    if run["state"] == wanted.value:
        return EXIT_OK
    message = run.get("state_message")
    _err(f"run {run['id']} ended {run['state']}" + (f": {message}" if message else ""))
    return EXIT_RUN_FAILED


# --- the commands ---------------------------------------------------------------------------


def _submit(args: argparse.Namespace) -> int:
    try:
        args.body = submit_body(args)
    except UsageError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    # Made here, not by the client, so an interrupted command can tell the user which key
    # fetches the run it may have created.
    args.idempotency_key = args.idempotency_key or str(uuid.uuid4())
    return _execute(args, _submit_flow)


async def _submit_flow(client: LakegateClient, progress: Progress, args: argparse.Namespace) -> int:
    target = progress.target
    progress.idempotency_key = args.idempotency_key
    submitted = await client.submit_body(
        target.namespace, args.body, idempotency_key=args.idempotency_key
    )
    progress.run = submitted.run
    if submitted.replayed:
        _err(f"run {submitted.run['id']} already existed for this idempotency key")
    if not args.wait:
        _print_run(target, submitted.run)
        return EXIT_OK
    run = await _follow(client, progress, submitted.run, args.poll_interval)
    _print_run(target, run)
    return _ended(run, wanted=RunState.SUCCEEDED)


async def _get_flow(client: LakegateClient, progress: Progress, args: argparse.Namespace) -> int:
    run = await client.get(progress.target.namespace, args.run_id)
    _print_run(progress.target, run, history=args.history)
    return EXIT_OK


def cancel_outcome(run: Run, namespace: str) -> str:
    """What a cancel request did, and what happens next: the run ends later, not now."""
    run_id, state = run["id"], run["state"]
    if state == RunState.CANCELED.value and run.get("databricks_run_id") is None:
        return f"run {run_id} was canceled before it reached Databricks"
    if is_terminal(state):
        return f"run {run_id} had already ended {state}: nothing to cancel"
    when = (
        "once Databricks has it and confirms"
        if state == RunState.SUBMITTING.value
        else "once Databricks confirms"
    )
    return (
        f"cancel requested for run {run_id}: it ends CANCELED {when} (or in the state it "
        f"reaches first); follow it with `lakegate get -n {namespace} {run_id}`, or wait for "
        f"it with `lakegate cancel --wait -n {namespace} {run_id}`"
    )


async def _cancel_flow(client: LakegateClient, progress: Progress, args: argparse.Namespace) -> int:
    run = await client.cancel(progress.target.namespace, args.run_id)
    if not args.wait:
        _print_run(progress.target, run)
        _err(cancel_outcome(run, progress.target.namespace))
        return EXIT_OK
    progress.run, progress.cancelling = run, True
    run = await _follow(client, progress, run, args.poll_interval)
    _print_run(progress.target, run)
    return _ended(run, wanted=RunState.CANCELED)


async def _runs_flow(client: LakegateClient, progress: Progress, args: argparse.Namespace) -> int:
    namespace, output = progress.target.namespace, progress.target.output
    next_cursor: str | None = None
    if args.all:
        found = client.iter_runs(namespace, states=args.state, page_size=args.limit)
        runs = [run async for run in found]
    else:
        page = await client.list_runs(namespace, states=args.state, limit=args.limit)
        runs, next_cursor = page.runs, page.next_cursor
    if output == "json":
        print(json.dumps({"runs": runs, "next_cursor": next_cursor}, indent=2))
        return EXIT_OK
    if runs:
        print(format_runs(runs))
    else:
        _err(f"no runs in namespace {namespace}")
    if next_cursor is not None:
        _err("more runs exist: pass --all to list them all")
    return EXIT_OK


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"labels are KEY=VALUE, not {text!r}")
    return key.strip(), value.strip()


def _number(kind: Callable[[str], float], *, minimum: float, strict: bool) -> Any:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < minimum or (strict and value == minimum):
            bound = "above" if strict else "at least"
            raise argparse.ArgumentTypeError(f"must be {bound} {minimum:g}, not {text}")
        return value

    return parse


# --- registration ---------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("gateway")
    group.add_argument("--url", help=f"gateway URL (default: ${ENV_URL} or {DEFAULT_URL})")
    group.add_argument(
        "-n", "--namespace", help=f"Kubernetes namespace of the runs (default: ${ENV_NAMESPACE})"
    )
    group.add_argument(
        "--token-file",
        type=Path,
        help=f"file holding the caller's bearer token (default: ${ENV_TOKEN})",
    )
    group.add_argument("-o", "--output", choices=("table", "json"), default="table")
    group.add_argument(
        "--timeout",
        type=_number(float, minimum=0, strict=True),
        default=30.0,
        help="seconds per HTTP call",
    )
    group.add_argument(
        "--retries",
        type=_number(int, minimum=0, strict=False),
        default=3,
        help="times to retry a call after a connection failure, 5xx or 429 (default: 3)",
    )
    return common


def _add_wait(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--wait", action="store_true", help=f"show the state live until {what}")
    _add_interval(parser)


def _add_interval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll-interval",
        type=_number(float, minimum=0, strict=True),
        default=2.0,
        help="seconds between polls",
    )


def add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``submit``, ``get``, ``cancel``, ``output``, ``runs`` and ``quota``."""
    common = _common()

    submit = sub.add_parser("submit", parents=[common], help="submit a Databricks run")
    submit.add_argument(
        "-f", "--file", required=True, help='runs/submit JSON or a {"spec": ...} body; - for stdin'
    )
    submit.add_argument("--label", action="append", type=_label, metavar="KEY=VALUE")
    submit.add_argument("--callback-url", help="URL told about the run's end")
    submit.add_argument(
        "--idempotency-key", help="reuse to get the same run back (default: a new UUID)"
    )
    _add_wait(submit, "the run ends; exit 0 only if it SUCCEEDED")
    submit.set_defaults(handler=_submit)

    get = sub.add_parser("get", parents=[common], help="show a run")
    get.add_argument("run_id", metavar="RUN_ID")
    get.add_argument("--history", action="store_true", help="show every state transition")
    get.set_defaults(handler=partial(_execute, flow=_get_flow))

    cancel = sub.add_parser("cancel", parents=[common], help="cancel a run")
    cancel.add_argument("run_id", metavar="RUN_ID")
    _add_wait(cancel, "the run ends; exit 0 only if it was CANCELED")
    cancel.set_defaults(handler=partial(_execute, flow=_cancel_flow))

    output = sub.add_parser(
        "output", parents=[common], help="show what each task of a run left (get-output)"
    )
    output.add_argument("run_id", metavar="RUN_ID")
    output.set_defaults(handler=partial(_execute, flow=output_flow))

    runs = sub.add_parser("runs", parents=[common], help="list the runs of a namespace")
    runs.add_argument(
        "--state", action="append", type=str.upper, choices=list(RunState.__members__)
    )
    runs.add_argument("--limit", type=_number(int, minimum=1, strict=False), help="runs per page")
    runs.add_argument("--all", action="store_true", help="follow every page")
    runs.set_defaults(handler=partial(_execute, flow=_runs_flow))

    quota = sub.add_parser("quota", parents=[common], help="show a namespace's quota and queue")
    quota.add_argument("--watch", action="store_true", help="show it live until Ctrl-C")
    _add_interval(quota)
    quota.set_defaults(handler=partial(_execute, flow=quota_flow))
