"""Rebuild read models from the event log: fold every event, in log order,
into its aggregate, then write the rows the inline projection would have
written. The result equals the live projection (a test proves it)."""

from collections import defaultdict

from .projection import changes_for
from .sql import statements

PROJECTIONS = {  # projection name -> (table, the projection statements that fill it)
    "tasks": ("tj_tasks", ("insert_task",)),
    "pending": ("tj_pending", ("upsert_pending",)),
    "claims": ("tj_claims", ("upsert_claim",)),
    "task-groups": ("tj_task_groups", ("upsert_task_group",)),
    "dependencies": ("tj_dependencies", ("insert_dependency",)),
}
PAGE = 2000


def fold_log(journal, aggregates: dict, first_position: dict, position: int = 0,
             progress=lambda done, total: None) -> int:
    """Fold events after `position` into `aggregates`, noting each aggregate's
    first notification id; returns the last position read."""
    total = journal.recorder.max_notification_id() or 0
    while True:
        page = journal.recorder.select_notifications(position + 1, PAGE)
        if not page:
            break
        for notification in page:
            event = journal.mapper.to_domain_event(notification)
            aggregates[event.originator_id] = event.mutate(aggregates.get(event.originator_id))
            first_position.setdefault(event.originator_id, notification.id)
        position = page[-1].id
        progress(position, max(total, position))
    return position


def rebuild(journal, names: list[str], progress=lambda done, total: None) -> int:
    """Drop and rebuild the named projections; returns the log position reached."""
    aggregates, first_position = {}, {}
    position = fold_log(journal, aggregates, first_position, 0, progress)
    dialect = journal.views.dialect
    sql = statements("projection.sql", dialect)
    with journal.recorder.datastore.transaction(commit=True) as curs:
        if dialect == "postgres":  # hold writers back, then catch up with what they wrote meanwhile
            for lock in journal.recorder.lock_table_statements:
                curs.execute(lock)
        position = fold_log(journal, aggregates, first_position, position, progress)
        batches = _rows(aggregates, first_position, names)
        for name in names:  # dropped, not emptied: a replay also moves a table to its current schema
            curs.execute(f"DROP TABLE IF EXISTS {PROJECTIONS[name][0]}")
        for create in statements("schema.sql", dialect).values():
            curs.execute(create)
        for stmt, rows in batches.items():
            curs.executemany(sql[stmt], rows)
        curs.execute(sql["advance_position"], {"position": position})
    return position


def _rows(aggregates: dict, first_position: dict, names: list[str]) -> dict[str, list[dict]]:
    changes = changes_for(list(aggregates.values()), set(aggregates))
    wanted = {stmt for name in names for stmt in PROJECTIONS[name][1]}
    batches = defaultdict(list)
    for stmt, params in changes.statements:
        if stmt in wanted:
            if "position" in params:
                params = {**params, "position": first_position[params["position"]]}
            batches[stmt].append(params)
    return batches
