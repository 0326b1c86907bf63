"""What the store tests build on: a ledger handle, and the runs they create."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.model import RunState, request_fingerprint
from gateway.store import NewRun, Store

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SPEC: dict[str, Any] = {
    "run_name": "team-a/etl",
    "tasks": [{"task_key": "main", "spark_python_task": {"python_file": "etl.py"}}],
}


class Ledger:
    """One fresh ledger of one backend: hands out stores connected to it and closes them all."""

    def __init__(self, make: Callable[[], Store]) -> None:
        self._make = make
        self._made: list[Store] = []

    def store(self) -> Store:
        """A new, unopened store on this ledger (another connection, as another process has)."""
        store = self._make()
        self._made.append(store)
        return store

    async def open(self) -> Store:
        store = self.store()
        await store.open()
        return store

    async def close_all(self) -> None:
        for store in self._made:
            await store.close()


def at(seconds: float) -> datetime:
    """NOW shifted by ``seconds``."""
    return NOW + timedelta(seconds=seconds)


def new_run(
    namespace: str = "team-a",
    *,
    key: str | None = None,
    spec: dict[str, Any] | None = None,
    state: RunState = RunState.SUBMITTING,
    next_poll_at: datetime | None = None,
    labels: dict[str, str] | None = None,
    identity_ref: dict[str, str] | None = None,
) -> NewRun:
    body = SPEC if spec is None else spec
    return NewRun(
        namespace=namespace,
        spec=body,
        request_fingerprint=request_fingerprint(body),
        workspace="adb-123",
        state=state,
        idempotency_key=key,
        databricks_host="adb-123.4.azuredatabricks.net",
        callback_url="https://scheduler.example/hook",
        labels=labels or {"team": "a"},
        identity_ref=identity_ref or {},
        next_poll_at=next_poll_at,
        message="accepted",
    )
