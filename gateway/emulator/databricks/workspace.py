"""One emulated workspace: the components every handler shares, and the error answer shape."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.emulator.clock import Clock
from gateway.emulator.databricks.azure_headers import AzureHeaderStats
from gateway.emulator.databricks.config import EmulatorConfig
from gateway.emulator.databricks.faults import FaultBook, request_info
from gateway.emulator.databricks.git_credentials import GitCredentialStore
from gateway.emulator.databricks.identity import IdentityService, Principal
from gateway.emulator.databricks.limits import RateLimiter
from gateway.emulator.databricks.runs import RunRecord, RunRegistry
from gateway.emulator.databricks.views import creator_of

PRINCIPAL = web.RequestKey("lakegate_emulator_principal", Principal)


@dataclass
class RequestStats:
    """Requests served, by method, route template and status ("dropped" for cut ones)."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def record(self, method: str, path: str, status: int | str) -> None:
        self.counts[(method, path, str(status))] += 1

    def as_dict(self) -> dict[str, Any]:
        by_status: Counter[str] = Counter()
        for (_, _, status), n in self.counts.items():
            by_status[status] += n
        return {
            "total": sum(self.counts.values()),
            "by_status": dict(sorted(by_status.items())),
            "requests": [
                {"method": m, "path": p, "status": s, "count": n}
                for (m, p, s), n in sorted(self.counts.items())
            ],
        }

    def count(self, method: str, path: str, status: int | str | None = None) -> int:
        """How many ``method path`` requests were answered (with ``status``, if given)."""
        return sum(
            n
            for (m, p, s), n in self.counts.items()
            if m == method and p == path and (status is None or s == str(status))
        )


class Workspace:
    """The state of one emulated workspace; built by ``create_app``, shared by handlers."""

    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.identity = IdentityService(config.identity, clock)
        # Entra's token facts are bound in once the Entra service exists (create_app).
        self.git_credentials = GitCredentialStore(clock)
        self.registry = RunRegistry(
            config.lifecycle,
            config.limits,
            first_run_id=config.first_run_id,
            first_job_id=config.first_job_id,
            checkout=self.git_credentials.checkout_ok,
        )
        self.limiter = RateLimiter(config.limits, clock.monotonic)
        self.faults = FaultBook(config.random_seed)
        self.stats = RequestStats()
        self.azure_headers = AzureHeaderStats()

    def now_ms(self) -> int:
        """The current time, with every run's queue slots brought up to it."""
        now = self.clock.now_ms()
        self.registry.refresh(now)
        return now

    def reset(self) -> None:
        """Forget runs, faults, request counts and rate-limit state; keep identities."""
        self.registry.reset()
        self.faults.clear()
        self.stats = RequestStats()
        self.azure_headers = AzureHeaderStats()
        self.limiter = RateLimiter(self.config.limits, self.clock.monotonic)

    def run_summaries(self) -> list[dict[str, Any]]:
        """Every run ever created, oldest first, for tests to count and attribute."""
        now = self.now_ms()
        return [_summary(record, now) for record in self.registry]

    def stats_dict(self) -> dict[str, Any]:
        return {
            **self.stats.as_dict(),
            "runs": {
                "total": len(self.registry),
                "active": self.registry.active_count,
                "queued": self.registry.queued_count,
            },
            "faults": {"active_rules": len(self.faults.rules()), "injected": self.faults.injected},
            "identity": self.identity.stats(),
            "azure_headers": self.azure_headers.as_dict(),
        }


def _summary(record: RunRecord, now_ms: int) -> dict[str, Any]:
    snap = record.snapshot(now_ms)
    summary: dict[str, Any] = {
        "run_id": record.run_id,
        "job_id": record.job_id,
        "task_run_ids": [t.run_id for t in record.tasks],
        "run_name": record.spec.run_name,
        "principal": record.principal.name,
        "application_id": record.principal.application_id,
        "creator_user_name": creator_of(record),
        "idempotency_token": record.spec.idempotency_token,
        "life_cycle_state": snap.life_cycle_state,
        "created_ms": record.timeline.submitted_ms,
    }
    if snap.result_state is not None:
        summary["result_state"] = snap.result_state
    return summary


def api_error(
    status: int,
    error_code: str,
    message: str,
    *,
    retry_after: int | None = None,
    with_request_info: bool = False,
) -> web.Response:
    """A Jobs API error in the Databricks shape (reference section 2.1)."""
    body: dict[str, Any] = {"error_code": error_code, "message": message}
    if with_request_info:
        body["details"] = [request_info()]
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.json_response(body, status=status, headers=headers)


def invalid(message: str) -> web.Response:
    return api_error(400, "INVALID_PARAMETER_VALUE", message)
