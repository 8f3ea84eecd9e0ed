"""Rebuild read models from the event log: fold every event, in log order,
into its aggregate, then write the rows the inline projection would have
written. The result equals the live projection (a test proves it)."""

from collections import defaultdict
from typing import Any
from uuid import UUID

from .history import history_rows
from .projection import changes_for

PROJECTIONS = {  # projection name -> (table, the projection statements that fill it)
    "tasks": ("tj_tasks", ("insert_task",)),
    "pending": ("tj_pending", ("upsert_pending",)),
    "claims": ("tj_claims", ("upsert_claim",)),
    "task-groups": ("tj_task_groups", ("upsert_task_group",)),
    "dependencies": ("tj_dependencies", ("insert_dependency",)),
    "artifacts": ("tj_artifacts", ("upsert_artifact",)),
    "objects": ("tj_objects", ("upsert_object",)),
    "task-queues": ("tj_task_queues", ("upsert_task_queue",)),
    "workers": ("tj_workers", ("upsert_worker",)),
    "worker-runs": ("tj_worker_runs", ("insert_worker_run",)),
    "history": ("tj_history", ("insert_history",)),  # one row per event: from the fold, not the final state
}
PAGE = 2000


def fold_log(journal, aggregates: dict, first_position: dict, position: int = 0,
             progress=lambda done, total: None, on_event=None) -> int:
    """Fold events after `position` into `aggregates`, noting each aggregate's
    first notification id; `on_event(position, event, aggregate after it)` sees
    each. Returns the last position read."""
    total = journal.store.last_event_position()
    while True:
        page = journal.events_after(position, PAGE)
        if not page:
            break
        for notification_id, event in page:
            aggregate = aggregates[event.originator_id] = event.mutate(aggregates.get(event.originator_id))
            first_position.setdefault(event.originator_id, notification_id)
            if on_event is not None:
                on_event(notification_id, event, aggregate)
        position = page[-1][0]
        progress(position, max(total, position))
    return position


def rebuild(journal, names: list[str], progress=lambda done, total: None) -> int:
    """Drop and rebuild the named projections; returns the log position reached."""
    aggregates: dict[UUID, Any] = {}
    first_position: dict[UUID, int] = {}
    history: list[dict] = []
    collect = history_collector(history) if "history" in names else None
    position = fold_log(journal, aggregates, first_position, 0, progress, collect)

    def rows():  # with writers held back: catch up with what they wrote meanwhile
        last = fold_log(journal, aggregates, first_position, position, progress, collect)
        batches = projection_rows(aggregates, first_position, names)
        if history:
            batches["insert_history"] = history
        return batches, last

    return journal.store.rebuild([PROJECTIONS[name][0] for name in names], rows)


def projection_rows(aggregates: dict, first_position: dict, names: list[str]) -> dict[str, list[dict]]:
    changes = changes_for(list(aggregates.values()), set(aggregates))
    wanted = {stmt for name in names for stmt in PROJECTIONS[name][1]}
    batches = defaultdict(list)
    for stmt, params in changes.statements:
        if stmt in wanted:
            if "position" in params:
                params = {**params, "position": first_position[params["position"]]}
            batches[stmt].append(params)
    return batches


def history_collector(rows: list[dict]):
    """on_event for fold_log: the history rows of each event, at its position."""
    def collect(position: int, event, aggregate) -> None:
        for row in history_rows(aggregate, [event]):
            del row["event_key"]
            row["position"] = position
            rows.append(row)
    return collect
