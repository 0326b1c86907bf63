"""The in-memory run registry: runs by id, idempotency tokens, owners, the active-run slots.

No run has a timer. A run's state is read off its timeline (``lifecycle.observe``); the only
bookkeeping done ahead of a request is slot accounting, in ``refresh``: a heap of the times
admitted runs end frees their slots in time order and admits queued runs at those instants,
so a queued run's wait is exact however long nobody asked.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Literal

from gateway.emulator.databricks.config import LifecycleConfig, LimitsConfig
from gateway.emulator.databricks.identity import Principal
from gateway.emulator.databricks.lifecycle import (
    ACTIVE_LIFE_CYCLES,
    Outcome,
    Plan,
    Snapshot,
    Timeline,
    course,
    observe,
    task_outcomes,
    worst,
)
from gateway.emulator.databricks.limits import active_runs_message, queue_full_message
from gateway.emulator.databricks.validation import SubmitSpec, TaskSpec

Checkout = Callable[[SubmitSpec, Principal, int], bool]


class LimitReached(Exception):
    """The workspace refuses the submission: 429 REQUEST_LIMIT_EXCEEDED."""


@dataclass(slots=True)
class TaskRun:
    run_id: int
    spec: TaskSpec
    # A for-each task's iterations, each a task run of its own (gateway.emulator.databricks
    # .for_each); an iteration names its for-each task's key, whose course it shares.
    iterations: tuple[TaskRun, ...] = ()
    parent_key: str | None = None


@dataclass(slots=True)
class RunRecord:
    run_id: int
    job_id: int
    spec: SubmitSpec
    principal: Principal
    timeline: Timeline
    tasks: tuple[TaskRun, ...]
    # When the run's slot frees; None while queued. Stale heap entries are told apart by it.
    end_ms: int | None = None
    _task_outcomes: dict[str, Outcome] | None = field(default=None, repr=False)

    def snapshot(self, now_ms: int) -> Snapshot:
        return observe(self.timeline, now_ms)

    def task_snapshot(self, task: TaskRun, now_ms: int) -> Snapshot:
        """A task shares its run's phases; only a terminal task can differ, by its outcome."""
        snap = observe(self.timeline, now_ms)
        if not snap.terminal:
            return snap
        # Safe to keep: the timeline of a terminal run never changes again.
        if self._task_outcomes is None:
            deps = {t.spec.task_key: t.spec.depends_on for t in self.tasks}
            asked = {
                t.spec.task_key: t.spec.asked_outcome
                for t in self.tasks
                if t.spec.asked_outcome is not None
            }
            self._task_outcomes = task_outcomes(deps, asked, course(self.timeline).outcome)
        key = task.parent_key or task.spec.task_key
        return observe(self.timeline, now_ms, self._task_outcomes[key])


@dataclass(frozen=True)
class Page:
    runs: list[RunRecord]
    has_more: bool
    next_token: int | None  # "runs older than this id"
    prev_token: int | None  # "runs newer than this id"


@dataclass(frozen=True)
class ListQuery:
    limit: int
    active_only: bool = False
    completed_only: bool = False
    job_id: int | None = None
    start_time_from: int | None = None
    start_time_to: int | None = None
    offset: int = 0
    cursor: tuple[Literal["before", "after"], int] | None = None
    submit_runs: bool = True  # False when run_type asks for a kind of run there is none of
    expand_tasks: bool = False


def plan_for(config: LifecycleConfig, spec: SubmitSpec) -> Plan:
    """How a submitted run will go: a task's own ask beats the first matching rule."""
    rule = next((r for r in config.rules if r.matches(spec.run_name)), None)
    asked = [t.asked_outcome for t in spec.tasks if t.asked_outcome is not None]
    seconds = [t.asked_seconds for t in spec.tasks if t.asked_seconds is not None]
    default = rule.result if rule else Outcome.SUCCESS
    outcome = worst(asked) if asked else default

    def pick(own: float | None, default: float) -> int:
        return round((own if own is not None else default) * 1000)

    running = max(seconds) if seconds else (rule.running_seconds if rule else None)
    return Plan(
        outcome=outcome,
        pending_ms=pick(rule.pending_seconds if rule else None, config.pending_seconds),
        running_ms=pick(running, config.running_seconds),
        terminating_ms=pick(rule.terminating_seconds if rule else None, config.terminating_seconds),
    )


def _timeout_ms(spec: SubmitSpec) -> int:
    timeouts = [spec.timeout_seconds, *(t.timeout_seconds for t in spec.tasks)]
    positive = [t for t in timeouts if t > 0]
    return min(positive) * 1000 if positive else 0


class RunRegistry:
    def __init__(
        self,
        lifecycle: LifecycleConfig,
        limits: LimitsConfig,
        *,
        first_run_id: int,
        first_job_id: int,
        checkout: Checkout | None = None,
    ) -> None:
        # Whether a run can check out its repository at an instant (Git credentials).
        self._checkout = checkout
        self._lifecycle = lifecycle
        self._limits = limits
        self._next_run_id = first_run_id
        self._next_job_id = first_job_id
        self.reset()

    def reset(self) -> None:
        """Forget every run; ids keep counting up, so no old id ever names a new run."""
        self._runs: dict[int, RunRecord] = {}
        self._task_parent: dict[int, tuple[RunRecord, TaskRun]] = {}
        self._tokens: dict[str, int] = {}
        self._by_owner: dict[str, list[int]] = {}
        self._ends: list[tuple[int, int]] = []
        self._admitted: set[int] = set()
        self._queue: deque[int] = deque()

    # --- slots -----------------------------------------------------------------------------

    def refresh(self, now_ms: int) -> None:
        """Free the slots of runs that ended by ``now_ms``, admitting queued runs in order."""
        while self._ends and self._ends[0][0] <= now_ms:
            end, run_id = heapq.heappop(self._ends)
            record = self._runs.get(run_id)
            if record is None or record.end_ms != end or run_id not in self._admitted:
                continue
            self._admitted.discard(run_id)
            self._admit_waiting(end)

    def _admit_waiting(self, at_ms: int) -> None:
        while self._queue and len(self._admitted) < self._limits.max_active_runs:
            self._admit(self._runs[self._queue.popleft()], at_ms)

    def _admit(self, record: RunRecord, at_ms: int) -> None:
        timeline = replace(record.timeline, admitted_ms=at_ms)
        if self._checkout is not None and not self._checkout(record.spec, record.principal, at_ms):
            # The run clones its repository as it leaves the queue; it cannot, so it fails.
            failed = replace(timeline.plan, outcome=Outcome.REPOSITORY_CHECKOUT_FAILED)
            timeline = replace(timeline, plan=failed)
        record.timeline = timeline
        self._track(record)

    def _track(self, record: RunRecord) -> None:
        end = course(record.timeline).end_ms
        record.end_ms = end
        if end is not None:
            self._admitted.add(record.run_id)
            heapq.heappush(self._ends, (end, record.run_id))

    def next_end_ms(self) -> int | None:
        """When the next slot frees, if any run holds one."""
        while self._ends:
            end, run_id = self._ends[0]
            record = self._runs.get(run_id)
            if record is not None and record.end_ms == end and run_id in self._admitted:
                return end
            heapq.heappop(self._ends)
        return None

    @property
    def active_count(self) -> int:
        return len(self._admitted)

    @property
    def queued_count(self) -> int:
        return len(self._queue)

    # --- submit, get, cancel ---------------------------------------------------------------

    def submit(self, spec: SubmitSpec, principal: Principal, now_ms: int) -> tuple[int, bool]:
        """The run id for ``spec`` and whether it is new; raises ``LimitReached``."""
        token = spec.idempotency_token
        if token is not None and token in self._tokens:
            return self._tokens[token], False
        self.refresh(now_ms)
        queue = (
            self._lifecycle.queue_by_default if spec.queue_enabled is None else spec.queue_enabled
        )
        limit = self._limits.max_active_runs
        has_slot = len(self._admitted) < limit
        if not has_slot and not queue:
            raise LimitReached(active_runs_message(len(self._admitted), limit))
        if not has_slot and len(self._queue) >= self._limits.max_queued_runs:
            raise LimitReached(queue_full_message(len(self._queue), self._limits.max_queued_runs))
        record = self._create(spec, principal, now_ms)
        if has_slot:
            self._admit(record, now_ms)
        else:
            self._queue.append(record.run_id)
        if token is not None:
            self._tokens[token] = record.run_id
        return record.run_id, True

    def _create(self, spec: SubmitSpec, principal: Principal, now_ms: int) -> RunRecord:
        run_id = self._next_run_id
        tasks = tuple(TaskRun(run_id + 1 + i, task) for i, task in enumerate(spec.tasks))
        self._next_run_id += len(tasks) + 1
        tasks = tuple(self._with_iterations(task) for task in tasks)
        timeline = Timeline(
            submitted_ms=now_ms, plan=plan_for(self._lifecycle, spec), timeout_ms=_timeout_ms(spec)
        )
        record = RunRecord(run_id, self._next_job_id, spec, principal, timeline, tasks)
        self._next_job_id += 1
        self._runs[run_id] = record
        for task in tasks:
            self._task_parent[task.run_id] = (record, task)
            for iteration in task.iterations:
                self._task_parent[iteration.run_id] = (record, iteration)
        self._by_owner.setdefault(principal.name, []).append(run_id)
        return record

    def _with_iterations(self, task: TaskRun) -> TaskRun:
        """A for-each task with its iterations, their run ids after the run's tasks'."""
        if task.spec.for_each is None:
            return task
        specs = task.spec.for_each.iteration_specs()
        first = self._next_run_id
        self._next_run_id += len(specs)
        key = task.spec.task_key
        task.iterations = tuple(
            TaskRun(first + i, spec, parent_key=key) for i, spec in enumerate(specs)
        )
        return task

    def get(self, run_id: int) -> RunRecord | None:
        return self._runs.get(run_id)

    def get_task(self, task_run_id: int) -> tuple[RunRecord, TaskRun] | None:
        return self._task_parent.get(task_run_id)

    def cancel(self, run_id: int, now_ms: int) -> bool:
        """Cancel a run (or the run of a task run id); False when the id is unknown.

        A run that has already stopped working is left as it is: cancel is a no-op then.
        """
        record = self._runs.get(run_id)
        if record is None:
            parent = self._task_parent.get(run_id)
            if parent is None:
                return False
            record = parent[0]
        self.refresh(now_ms)
        stop = course(record.timeline).stop_ms
        if record.timeline.cancel_ms is not None or (stop is not None and stop <= now_ms):
            return True
        record.timeline = replace(record.timeline, cancel_ms=now_ms)
        if record.timeline.admitted_ms is None:
            self._queue.remove(record.run_id)
            record.end_ms = course(record.timeline).end_ms
        else:
            self._track(record)
        return True

    def cancel_all(self, principal: Principal, now_ms: int, *, job_id: int | None) -> int:
        """Cancel the caller's queued runs, or the active runs of one job; returns how many."""
        self.refresh(now_ms)
        if job_id is None:
            targets = [
                rid for rid in self._queue if self._runs[rid].principal.name == principal.name
            ]
        else:
            targets = [r.run_id for r in self._runs.values() if r.job_id == job_id]
        return sum(self.cancel(rid, now_ms) for rid in targets)

    # --- listing ---------------------------------------------------------------------------

    def owned_by(self, principal: Principal, query: ListQuery, now_ms: int) -> Page:
        """A page of the caller's runs, newest first (runs/list shows only the caller's)."""
        ids = self._by_owner.get(principal.name, [])
        if not query.submit_runs:
            return Page([], False, None, None)
        if query.cursor is not None and query.cursor[0] == "after":
            return self._page_after(ids, query, now_ms)
        end = bisect_left(ids, query.cursor[1]) if query.cursor else len(ids)
        found: list[RunRecord] = []
        skip = query.offset if query.cursor is None else 0
        for i in range(end - 1, -1, -1):
            record = self._runs[ids[i]]
            if not self._matches(record, query, now_ms):
                continue
            if skip:
                skip -= 1
                continue
            found.append(record)
            if len(found) > query.limit:
                break
        page, has_more = found[: query.limit], len(found) > query.limit
        return Page(
            page,
            has_more,
            next_token=page[-1].run_id if has_more else None,
            prev_token=page[0].run_id if page and (query.cursor or query.offset) else None,
        )

    def _page_after(self, ids: list[int], query: ListQuery, now_ms: int) -> Page:
        assert query.cursor is not None
        found: list[RunRecord] = []
        for i in range(bisect_right(ids, query.cursor[1]), len(ids)):
            record = self._runs[ids[i]]
            if self._matches(record, query, now_ms):
                found.append(record)
                if len(found) > query.limit:
                    break
        newer_exist = len(found) > query.limit
        page = list(reversed(found[: query.limit]))
        return Page(
            page,
            has_more=True,
            next_token=page[-1].run_id if page else query.cursor[1] + 1,
            prev_token=page[0].run_id if newer_exist else None,
        )

    def _matches(self, record: RunRecord, query: ListQuery, now_ms: int) -> bool:
        start = record.timeline.submitted_ms
        if query.job_id is not None and record.job_id != query.job_id:
            return False
        if query.start_time_from is not None and start < query.start_time_from:
            return False
        if query.start_time_to is not None and start > query.start_time_to:
            return False
        if query.active_only or query.completed_only:
            active = record.snapshot(now_ms).life_cycle_state in ACTIVE_LIFE_CYCLES
            return active if query.active_only else not active
        return True

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(self._runs.values())

    def __len__(self) -> int:
        return len(self._runs)
