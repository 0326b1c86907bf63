"""What one client command runs with, read before the event loop starts.

Where and as whom it talks to the gateway (``Target``: the URL, the namespace, the token from
a file or the environment), the body it submits (a file or stdin), and what it got to on the
way (``Progress``), so an interrupt or a failure can say what it leaves behind. Everything
that can block is read here, once; the loop then does HTTP only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.cli.client import DEFAULT_URL, LakegateClient, Run, is_terminal, normalize_url
from gateway.cli.output import StateDisplay
from gateway.cli.retry import ClientRetry, RetryNotice

ENV_URL = "LAKEGATE_URL"
ENV_TOKEN = "LAKEGATE_TOKEN"  # noqa: S105 - the variable's name, not a token
ENV_NAMESPACE = "LAKEGATE_NAMESPACE"


class UsageError(Exception):
    """The command line asks for something impossible; said on stderr, exit 2."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where and as whom one command talks to the gateway, resolved before the loop starts."""

    url: str
    namespace: str
    token: str | None
    timeout: float
    retries: int
    output: str

    def client(self, on_retry: Callable[[RetryNotice], None]) -> LakegateClient:
        policy = ClientRetry(attempts=self.retries + 1)
        return LakegateClient(
            self.url, token=self.token, timeout=self.timeout, retry=policy, on_retry=on_retry
        )

    def command(self, *words: str) -> str:
        """A command line a user can paste to act on the same gateway and namespace."""
        url = "" if self.url == (os.environ.get(ENV_URL) or DEFAULT_URL) else f" --url {self.url}"
        return " ".join(("lakegate", words[0] + url, "-n", self.namespace, *words[1:]))


@dataclass(slots=True)
class Progress:
    """What the command got to, so an interrupt or a failure can say what is left behind."""

    target: Target
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


def target_of(args: argparse.Namespace) -> Target:
    url = args.url or os.environ.get(ENV_URL) or DEFAULT_URL
    namespace = args.namespace or os.environ.get(ENV_NAMESPACE)
    if not namespace:
        raise UsageError(f"a namespace is needed: pass --namespace or set {ENV_NAMESPACE}")
    # An explicit file beats the ambient variable; tokens never come from the command line.
    token = read_token(args.token_file) if args.token_file else os.environ.get(ENV_TOKEN)
    try:
        url = normalize_url(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return Target(url, namespace, token or None, args.timeout, args.retries, args.output)


def read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read token file {path}: {exc.strerror}") from None
    if not token:
        raise UsageError(f"token file {path} is empty")
    return token


def submit_body(args: argparse.Namespace) -> dict[str, Any]:
    name = "stdin" if args.file == "-" else args.file
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{name} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(payload, dict):
        raise UsageError(f"{name} must hold a JSON object")
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
