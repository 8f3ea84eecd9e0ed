"""The history read model (ADR 0015): one row per event of a task, of its
artifacts and of its task group, with who did it and what changed, so a
task's history is one indexed read and a group's history pages by log
position. Rows are a pure function of the event and of its aggregate after
the event, so the live projection and a replay agree. Also: folding a task's
own events up to a time (its status as of then) and decoding log entries."""

from collections.abc import Iterable
from datetime import datetime
from functools import cache

import orjson

from taskjournal.shared.actor import UNKNOWN
from taskjournal.shared.domain.artifact import Artifact
from taskjournal.shared.domain.task import Task
from taskjournal.shared.domain.task_group import TaskGroup
from taskjournal.shared.domain.time import format_ms

# Event attributes that are not "what changed": the envelope, ids the entry
# carries already, reasons (an entry's own field) and bulky copies.
NOT_CHANGES = frozenset({"originator_id", "originator_version", "originator_topic", "timestamp", "actor", "at",
                         "task_id", "run_id", "task_group_id", "reason", "reason_created", "definition",
                         "task_status", "routes", "details", "via_claim_task", "through"})
REASONS = ("reason_created", "reason")
TIMES = frozenset({"taken_until", "expires"})  # epoch ms in events, dates in entries


def event_name(event) -> str:
    """`Task.RunClaimed`: the aggregate and event class (ADR 0001's names)."""
    return type(event).__qualname__


def event_ms(event) -> int:
    """When the event was recorded (its log timestamp), epoch ms."""
    stamp: datetime = event.timestamp
    return int(stamp.timestamp() * 1000)


@cache
def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def changes_of(event) -> dict:
    return {camel(k): format_ms(v) if k in TIMES and isinstance(v, int) else v
            for k, v in vars(event).items() if k not in NOT_CHANGES}


def reason_of(event) -> str | None:
    for key in REASONS:
        value = vars(event).get(key)
        if isinstance(value, str):
            return value
    return None


def history_rows(aggregate, events: list) -> list[dict]:
    """Rows of tj_history for `events` of `aggregate` (in order; the last of
    them left the aggregate as it is); `event_key` stands for the position
    the recorder gives the event. Aggregates without a history: none."""
    if isinstance(aggregate, Task):
        task_id, group_id = aggregate.task_id, aggregate.definition["taskGroupId"]
        next_run = len(aggregate.runs) - sum(event_name(e) == "Task.RunAdded" for e in events)
    elif isinstance(aggregate, Artifact):
        task_id, group_id = aggregate.task_id, aggregate.task_status["taskGroupId"]
    elif isinstance(aggregate, TaskGroup):
        task_id, group_id = None, aggregate.task_group_id
    else:
        return []
    rows = []
    for event in events:
        run_id = vars(event).get("run_id", getattr(aggregate, "run_id", None))
        if event_name(event) == "Task.RunAdded":
            run_id, next_run = next_run, next_run + 1
        rows.append({"event_key": (event.originator_id, event.originator_version), "task_id": task_id,
                     "task_group_id": group_id, "run_id": run_id, "event": event_name(event),
                     "time": format_ms(event_ms(event)),
                     "actor": orjson.dumps(getattr(event, "actor", UNKNOWN)).decode(), "reason": reason_of(event),
                     "changes": orjson.dumps(changes_of(event)).decode()})
    return rows


def entry(row: dict) -> dict:
    """A tj_history row (queries.sql names its columns as entries do) as the API shows it."""
    row["actor"], row["changes"] = orjson.loads(row["actor"]), orjson.loads(row["changes"])
    return row


def status_as_of(events: Iterable, as_of: int) -> dict | None:
    """A task's status after its events recorded at or before `as_of` (ms);
    None when it was not defined yet."""
    task = None
    for event in events:
        if event_ms(event) > as_of:
            break
        task = event.mutate(task)
    return None if task is None else task.status()


def log_entry(position: int, event) -> dict:
    """An event of the log for an external audit system: everything it holds."""
    data = {camel(k): v for k, v in vars(event).items()
            if k not in ("originator_id", "originator_version", "originator_topic", "timestamp", "actor")}
    return {"position": position, "time": format_ms(event_ms(event)), "event": event_name(event),
            "aggregateId": str(event.originator_id), "version": event.originator_version,
            "actor": getattr(event, "actor", UNKNOWN), "data": data}
