"""`taskjournal audit` (ADR 0015): replay the whole log in memory, check the
invariants of the task state machine on every event, rebuild every read
model into a scratch SQLite database and compare it with the live one.

Invariants (behaviour spec §3-§5): run ids are contiguous; a task has at most
one open (pending or running) run; no run is claimed twice; a resolved run
never changes again; retriesLeft is never negative; every dependent is
scheduled once its dependencies allow it (by the end of the log, unless its
deadline passed first)."""

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any
from uuid import uuid4

from taskjournal.shared import heap
from taskjournal.shared.domain.task import Task

from . import store_env
from .history import event_ms
from .replay import PROJECTIONS, history_collector, projection_rows

OPEN = ("pending", "running")
LIVE_ONLY = {"leased_until"}  # a claimWork lease: kept by the live table only, never derived from the log
EXAMPLES = 5  # differing rows shown per table
# Projection statements that store their parameters as they are (a plain INSERT of text and
# integers, one row per event): compared as the replay made them, with no scratch round trip
# but for SAMPLE rows that show the statement still does so. tj_history is most of the rows.
AS_WRITTEN = ("insert_history",)
SAMPLE = 100
PAGE_EVENTS = 10_000  # read the log in large pages: the audit holds it all in memory anyway
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


def audit(journal, progress: Callable[[int, int], None] = lambda done, total: None) -> Report:
    """Check the whole log and the read models; a report of what is wrong."""
    with heap.paused():  # it builds the whole log's aggregates and rows: nothing for a collection to free
        return _audit(journal, progress)


def _audit(journal, progress: Callable[[int, int], None]) -> Report:
    report = Report()
    aggregates: dict[Any, Any] = {}
    first_position: dict[Any, int] = {}
    history: list[dict] = []
    collect = history_collector(history)
    total, position, last_ms = journal.store.last_event_position(), 0, 0
    while True:
        page = journal.events_after(position, PAGE_EVENTS)
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
    report.differences = compare_read_models(journal.store, batches, position)
    return report


def _task_id(task: Task | None, event) -> str:
    return task.task_id if task is not None else getattr(event, "task_id", str(event.originator_id))


def compare_read_models(live, batches: dict, position: int) -> dict[str, list[str]]:
    """Compare every read model with the replayed rows: those of AS_WRITTEN
    statements as they are, the others written into a scratch SQLite database
    (in memory) with the projection's own statements and read back. The live tables are
    read on a thread meanwhile (a PostgreSQL store answers while the scratch fills)."""
    from .stores import SQLiteStore

    as_written = {stmt: batches.get(stmt, []) for stmt in AS_WRITTEN}
    # a few of their rows take the scratch path too: proof that the statement stores them as they are
    scratch_batches = {**batches, **{stmt: rows[:SAMPLE] for stmt, rows in as_written.items()}}
    with ThreadPoolExecutor(1, thread_name_prefix="audit-live") as reader:
        live_tables = {name: reader.submit(live.table_rows, table) for name, (table, _) in PROJECTIONS.items()}
        scratch = SQLiteStore(store_env(None, f"file:taskjournal-audit-{uuid4().hex}?mode=memory&cache=shared"))
        try:
            scratch.rebuild([table for table, _ in PROJECTIONS.values()], lambda: (scratch_batches, position))
            found = {}
            for name, (table, (stmt, *_)) in PROJECTIONS.items():
                replayed = scratch.table_rows(table)
                if stmt in as_written:
                    replayed = _as_written(stmt, replayed, as_written[stmt])
                if differences := _differences(live_tables[name].result(), replayed):
                    found[name] = differences
            return found
        finally:
            reader.shutdown(cancel_futures=True)
            scratch.close()


def _as_written(stmt: str, sample: tuple[list[str], list[tuple]], rows: list[dict]) -> tuple[list[str], list[tuple]]:
    """A table's rows straight from the parameters of its AS_WRITTEN statement,
    once the sample the scratch database stored shows they are stored as they are."""
    columns, stored = sample
    row_values = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    try:
        values: list[tuple] | None = [row_values(row) for row in rows]
    except KeyError:  # a column not filled from the parameter of its name
        values = None
    if values is None or Counter(stored) != Counter(values[:SAMPLE]):
        raise ValueError(f"{stmt} does not store its parameters as they are: take it out of audit.AS_WRITTEN")
    return columns, values


def _differences(live: tuple[list[str], list[tuple]], replayed: tuple[list[str], list[tuple]]) -> list[str]:
    """The rows that differ, by key: what each side holds (a few of them)."""
    columns = [c for c in (live[0] or replayed[0]) if c not in LIVE_ONLY]
    a, b = _in_columns(live, columns), _in_columns(replayed, columns)
    if _same_rows(a, b):
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


def _same_rows(a: list[tuple], b: list[tuple]) -> bool:
    """The same rows, as many times each. A read model has a key, so its rows
    are distinct: then sets tell, faster than counting."""
    if a == b:  # in the same order (the history: both by position)
        return True
    if len(a) != len(b):
        return False
    distinct = set(a)
    if len(distinct) == len(a):
        return distinct == set(b)  # b has as many rows, all in a's set: each once
    return Counter(a) == Counter(b)


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
