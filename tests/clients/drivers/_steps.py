"""What every driver shares: its arguments on stdin, its steps as JSON on the last line.

Drivers run in a client's own environment, not lakegate's: this module uses the standard
library only. Steps form a chain: once one fails, the rest are recorded as not reached.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any


def read_args() -> dict[str, Any]:
    return dict(json.load(sys.stdin))


class Steps:
    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.failed = False

    def _fail(self, name: str, exc: BaseException) -> None:
        traceback.print_exc(file=sys.stderr)
        self.steps.append({"step": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
        self.failed = True

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        if self.failed:
            return None
        try:
            value = fn()
        except Exception as exc:  # the client's own error is the result
            self._fail(name, exc)
            return None
        self.steps.append({"step": name, "ok": True, "value": value})
        return value

    async def arun(self, name: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        if self.failed:
            return None
        try:
            value = await fn()
        except Exception as exc:  # the client's own error is the result
            self._fail(name, exc)
            return None
        self.steps.append({"step": name, "ok": True, "value": value})
        return value

    def emit(self) -> None:
        sys.stdout.write("\n" + json.dumps({"steps": self.steps}, default=str) + "\n")
        sys.stdout.flush()
