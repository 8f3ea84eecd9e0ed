"""`taskjournal audit` (ADR 0015): replay the whole log in memory, check the
invariants of the task state machine on every event, rebuild every read
model into a scratch SQLite database and compare it with the live one.

Invariants (behaviour spec §3-§5): run ids are contiguous; a task has at most
one open (pending or running) run; no run is claimed twice; a resolved run
never changes again; retriesLeft is never negative; every dependent is
scheduled once its dependencies allow it (by the end of the log, unless its
deadline passed first)."""

import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskjournal.shared.domain.task import Task

from . import store_env
from .history import event_ms
from .replay import PAGE, PROJECTIONS, history_collector, projection_rows

OPEN = ("pending", "running")
LIVE_ONLY = {"leased_until"}  # a claimWork lease: kept by the live table only, never derived from the log
EXAMPLES = 5  # differing rows shown per table
KEYS = ("position", "task_id", "run_id", "name", "required_task_id", "dependent_task_id", "task_group_id",
        "task_queue_id", "worker_group", "worker_id")  # what names a row (the columns a table has of these)


@dataclass
class Violation:
    position: int
    task_id: str
    rule: str
    detail: str


@dataclass
class Report:
    events: int = 0
    tasks: int = 0
    violations: list[Violation] = field(default_factory=list)
    differences: dict[str, list[str]] = field(default_factory=dict)  # projection -> differing rows, described

    @property
    def ok(self) -> bool:
        return not self.violations and not self.differences


def task_event_problems(task: Task | None, event) -> list[tuple[str, str]]:
    """(rule, detail) for each invariant `event` breaks, given the task before it."""
    name = type(event).__name__  # the classes @event makes are invisible to mypy: compare names
    if name == "Defined":
        return [("defined-once", "the task is defined again")] if task is not None else []
    if task is None:
        return [("defined-once", f"{name} before the task was defined")]
    last = task.last_run
    if name == "RunAdded":
        problems = []
        if last is not None and last["state"] in OPEN:
            problems.append(("one-open-run", f"run {len(task.runs)} added while run {last['runId']} is {last['state']}"))
        if event.retries_left < 0:
            problems.append(("retries-not-negative", f"retriesLeft {event.retries_left}"))
        return problems
    if name == "PriorityChanged":
        return [("no-change-after-resolution", "priority changed on a resolved task")] if task.is_resolved else []
    run_id = getattr(event, "run_id", None)
    if run_id is None:
        return []
    if not 0 <= run_id < len(task.runs):
        return [("contiguous-run-ids", f"{name} names run {run_id} of {len(task.runs)}")]
    run = task.runs[run_id]
    if run["state"] not in OPEN:
        return [("no-change-after-resolution", f"{name} on run {run_id}, {run['state']}")]
    if run_id != len(task.runs) - 1:
        return [("contiguous-run-ids", f"{name} on run {run_id}, not the last run")]
    if name == "RunClaimed" and run["state"] != "pending":
        return [("claimed-once", f"run {run_id} claimed again (by {event.worker_group}/{event.worker_id})")]
    if name == "RunReclaimed" and run["state"] != "running":
        return [("claimed-once", f"run {run_id} reclaimed while {run['state']}")]
    return []


def unscheduled_dependents(tasks: dict[str, Task], end: int) -> list[tuple[str, str]]:
    """(taskId, detail) of tasks with no run whose dependencies all allowed
    scheduling, and whose deadline had not passed by `end` (ms)."""
    found = []
    for task in tasks.values():
        d = task.definition
        others = [dep for dep in d["dependencies"] if dep != task.task_id]
        if task.runs or not others or task.task_id in d["dependencies"] or task.deadline_ms <= end:
            continue
        if all(dep in tasks and _satisfies(tasks[dep], d["requires"]) for dep in others):
            found.append((task.task_id, f"dependencies {', '.join(others)} allow it; never scheduled"))
    return found


def _satisfies(dependency: Task, requires: str) -> bool:
    return dependency.ever_completed or (requires == "all-resolved" and dependency.ever_resolved)


def audit(journal, progress: Callable[[int, int], None] = lambda done, total: None,
          scratch_dir: str | None = None) -> Report:
    """Check the whole log and the read models; a report of what is wrong."""
    report = Report()
    aggregates: dict[Any, Any] = {}
    first_position: dict[Any, int] = {}
    history: list[dict] = []
    collect = history_collector(history)
    total, position, last_ms = journal.store.last_event_position(), 0, 0
    while True:
        page = journal.events_after(position, PAGE)
        if not page:
            break
        for notification_id, event in page:
            before = aggregates.get(event.originator_id)
            if isinstance(event, Task.Event):
                for rule, detail in task_event_problems(before, event):
                    report.violations.append(Violation(notification_id, _task_id(before, event), rule, detail))
            try:
                after = event.mutate(before)
            except Exception as error:  # an event its aggregate cannot take: reported, then skipped
                report.violations.append(Violation(notification_id, _task_id(before, event), "applies",
                                                   f"{type(event).__name__} cannot be applied: {error!r}"))
                continue
            aggregates[event.originator_id] = after
            first_position.setdefault(event.originator_id, notification_id)
            collect(notification_id, event, after)
            last_ms = max(last_ms, event_ms(event))
        position = page[-1][0]
        report.events += len(page)
        progress(position, max(total, position))
    tasks = {a.task_id: a for a in aggregates.values() if isinstance(a, Task)}
    report.tasks = len(tasks)
    for task_id, detail in unscheduled_dependents(tasks, last_ms):
        report.violations.append(Violation(position, task_id, "dependents-scheduled", detail))
    batches = projection_rows(aggregates, first_position, list(PROJECTIONS))
    batches["insert_history"] = history
    report.differences = compare_read_models(journal.store, batches, position, scratch_dir)
    return report


def _task_id(task: Task | None, event) -> str:
    return task.task_id if task is not None else getattr(event, "task_id", str(event.originator_id))


def compare_read_models(live, batches: dict, position: int, scratch_dir: str | None = None) -> dict[str, list[str]]:
    """Write the replayed rows into a scratch SQLite database with the
    projection's own statements; compare every read model with the live one."""
    from .stores import SQLiteStore

    with tempfile.TemporaryDirectory(dir=scratch_dir, prefix="taskjournal-audit-") as directory:
        scratch = SQLiteStore(store_env(None, str(Path(directory) / "scratch.sqlite")))
        try:
            tables = [table for table, _ in PROJECTIONS.values()]
            scratch.rebuild(tables, lambda: (batches, position))
            return {name: found for name, (table, _) in PROJECTIONS.items()
                    if (found := _differences(live.table_rows(table), scratch.table_rows(table)))}
        finally:
            scratch.close()


def _differences(live: tuple[list[str], list[tuple]], replayed: tuple[list[str], list[tuple]]) -> list[str]:
    """The rows that differ, by key: what each side holds (a few of them)."""
    columns = [c for c in (live[0] or replayed[0]) if c not in LIVE_ONLY]
    a, b = _in_columns(live, columns), _in_columns(replayed, columns)
    if Counter(a) == Counter(b):
        return []  # the common case, without describing every row
    keys = [k for k in KEYS if k in columns]

    def keyed(rows: list[tuple]) -> dict[tuple, dict]:
        return {tuple((k, row[k]) for k in keys): row for row in (dict(zip(columns, r)) for r in rows)}
    left, right = keyed(a), keyed(b)
    lines = []
    for key in sorted(left.keys() | right.keys(), key=repr):
        if left.get(key) == right.get(key):
            continue
        name = " ".join(f"{k}={v}" for k, v in key)
        if key not in right:
            lines.append(f"{name}: only in the live read model")
        elif key not in left:
            lines.append(f"{name}: missing from the live read model")
        else:
            changed = [f"{k} live {_short(left[key][k])} replayed {_short(right[key][k])}"
                       for k in columns if left[key][k] != right[key][k]]
            lines.append(f"{name}: " + "; ".join(changed))
    return lines[:EXAMPLES] + ([f"... and {len(lines) - EXAMPLES} more"] if len(lines) > EXAMPLES else [])


def _in_columns(table: tuple[list[str], list[tuple]], columns: list[str]) -> list[tuple]:
    """The rows' values in the order of `columns` (a table's own order may differ)."""
    names, rows = table
    if not rows or names == columns:
        return rows
    order = [names.index(c) for c in columns]
    return [tuple(row[i] for i in order) for row in rows]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
