"""``lakegate submit | get | cancel | runs``: the command line's side of the REST API.

Everything that can block (the spec file, stdin, the token file, the environment) is read
before the event loop starts; the loop then does HTTP only, through one ``LakegateClient``.
Results go to stdout (a table or JSON) and progress, retries and errors to stderr, so
``-o json`` output can be piped whatever happens on the way.

Exit codes: 0 done (the run SUCCEEDED, with ``--wait``); 1 the run ended in another terminal
state; 2 a usage error or a 4xx answer; 3 a 5xx answer or no answer at all; 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from gateway import logs
from gateway.cli_output import StateDisplay, format_run, format_runs
from gateway.client import (
    DEFAULT_URL,
    ApiError,
    GatewayClientError,
    GatewayUnreachable,
    LakegateClient,
    RetryNotice,
    RetryPolicy,
    Run,
    is_terminal,
    normalize_url,
)
from gateway.model import RunState

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130

ENV_URL = "LAKEGATE_URL"
ENV_TOKEN = "LAKEGATE_TOKEN"  # noqa: S105 - the variable's name, not a token
ENV_NAMESPACE = "LAKEGATE_NAMESPACE"


class _UsageError(Exception):
    """The command line asks for something impossible; said on stderr, exit 2."""


@dataclass(frozen=True, slots=True)
class _Target:
    """Where and as whom one command talks to the gateway, resolved before the loop starts."""

    url: str
    namespace: str
    token: str | None
    timeout: float
    retries: int
    output: str

    def client(self, on_retry: Callable[[RetryNotice], None]) -> LakegateClient:
        policy = RetryPolicy(attempts=self.retries + 1)
        return LakegateClient(
            self.url, token=self.token, timeout=self.timeout, retry=policy, on_retry=on_retry
        )

    def command(self, *words: str) -> str:
        """A command line a user can paste to act on the same gateway and namespace."""
        url = "" if self.url == (os.environ.get(ENV_URL) or DEFAULT_URL) else f" --url {self.url}"
        return " ".join(("lakegate", words[0] + url, "-n", self.namespace, *words[1:]))


@dataclass(slots=True)
class _Progress:
    """What the command got to, so an interrupt or a failure can say what is left behind."""

    target: _Target
    idempotency_key: str | None = None
    run: Run | None = None
    cancelling: bool = False
    display: StateDisplay | None = None

    def left_behind(self, *, answered: bool) -> str | None:
        """What may still exist; ``answered`` when the gateway refused the last call for sure."""
        if self.run is None:
            if self.idempotency_key is None or answered:
                return None
            return (
                "the gateway may have accepted the run before the answer was lost; re-run "
                f"with --idempotency-key {self.idempotency_key} to get it without a second run"
            )
        run_id, state = str(self.run["id"]), self.run["state"]
        if is_terminal(state):
            return None
        if self.cancelling:
            return f"the cancel of run {run_id} was requested; it is {state} for now"
        return (
            f"run {run_id} is still {state} and keeps running.\n"
            f"  follow it: {self.target.command('get', run_id)}\n"
            f"  cancel it: {self.target.command('cancel', run_id)}"
        )


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- running a command ----------------------------------------------------------------------

Flow = Callable[[LakegateClient, _Progress, argparse.Namespace], Awaitable[int]]


def _execute(args: argparse.Namespace, flow: Flow) -> int:
    try:
        target = _target(args)
    except _UsageError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    progress = _Progress(target)

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


def _report(exc: GatewayClientError, progress: _Progress) -> int:
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


async def _follow(client: LakegateClient, progress: _Progress, run: Run, interval: float) -> Run:
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


def _print_run(target: _Target, run: Run, *, history: bool = False) -> None:
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
        args.body = _submit_body(args)
    except _UsageError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    # Made here, not by the client, so an interrupted command can tell the user which key
    # fetches the run it may have created.
    args.idempotency_key = args.idempotency_key or str(uuid.uuid4())
    return _execute(args, _submit_flow)


async def _submit_flow(
    client: LakegateClient, progress: _Progress, args: argparse.Namespace
) -> int:
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


async def _get_flow(client: LakegateClient, progress: _Progress, args: argparse.Namespace) -> int:
    run = await client.get(progress.target.namespace, args.run_id)
    _print_run(progress.target, run, history=args.history)
    return EXIT_OK


async def _cancel_flow(
    client: LakegateClient, progress: _Progress, args: argparse.Namespace
) -> int:
    run = await client.cancel(progress.target.namespace, args.run_id)
    if not args.wait:
        _print_run(progress.target, run)
        return EXIT_OK
    progress.run, progress.cancelling = run, True
    run = await _follow(client, progress, run, args.poll_interval)
    _print_run(progress.target, run)
    return _ended(run, wanted=RunState.CANCELED)


async def _runs_flow(client: LakegateClient, progress: _Progress, args: argparse.Namespace) -> int:
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


# --- reading the command line and the environment -------------------------------------------


def _target(args: argparse.Namespace) -> _Target:
    url = args.url or os.environ.get(ENV_URL) or DEFAULT_URL
    namespace = args.namespace or os.environ.get(ENV_NAMESPACE)
    if not namespace:
        raise _UsageError(f"a namespace is needed: pass --namespace or set {ENV_NAMESPACE}")
    # An explicit file beats the ambient variable; tokens never come from the command line.
    token = _read_token(args.token_file) if args.token_file else os.environ.get(ENV_TOKEN)
    try:
        url = normalize_url(url)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    return _Target(url, namespace, token or None, args.timeout, args.retries, args.output)


def _read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise _UsageError(f"cannot read token file {path}: {exc.strerror}") from None
    if not token:
        raise _UsageError(f"token file {path} is empty")
    return token


def _submit_body(args: argparse.Namespace) -> dict[str, Any]:
    name = "stdin" if args.file == "-" else args.file
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
    except OSError as exc:
        raise _UsageError(f"cannot read {name}: {exc.strerror}") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _UsageError(
            f"{name} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(payload, dict):
        raise _UsageError(f"{name} must hold a JSON object")
    body = as_submit_body(payload)
    if args.label:
        body["labels"] = {**(body.get("labels") or {}), **dict(args.label)}
    if args.callback_url:
        body["callback_url"] = args.callback_url
    return body


def as_submit_body(payload: dict[str, Any]) -> dict[str, Any]:
    """A file's JSON as a submit body: a bare runs/submit payload is wrapped as its ``spec``."""
    if "tasks" not in payload and isinstance(payload.get("spec"), dict):
        return dict(payload)
    # Anything else is taken for a runs/submit payload; the gateway says what is wrong with it.
    return {"spec": payload}


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
    parser.add_argument(
        "--poll-interval",
        type=_number(float, minimum=0, strict=True),
        default=2.0,
        help="seconds between polls",
    )


def add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``submit``, ``get``, ``cancel`` and ``runs`` on the ``lakegate`` parser."""
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

    runs = sub.add_parser("runs", parents=[common], help="list the runs of a namespace")
    runs.add_argument(
        "--state", action="append", type=str.upper, choices=list(RunState.__members__)
    )
    runs.add_argument("--limit", type=_number(int, minimum=1, strict=False), help="runs per page")
    runs.add_argument("--all", action="store_true", help="follow every page")
    runs.set_defaults(handler=partial(_execute, flow=_runs_flow))
